import pino from 'pino';

// Structured logs: a constant message plus metadata. Synchronous destination,
// so nothing is lost when a daemon exits straight after logging.

export type Logger = pino.Logger;

export function createLogger(name: string, level = process.env.SWARM_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: 1, sync: true }),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
