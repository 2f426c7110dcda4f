import pino from 'pino';

// Structured logs: a constant message plus metadata. Synchronous destination,
// so nothing is lost when a daemon exits straight after logging.

export type Logger = pino.Logger;

/**
 * `fd`: a daemon logs to stdout, which PM2 keeps as its log; swarmctl logs to
 * stderr, so that nothing it logs lands in the JSON or the table it prints.
 */
export function createLogger(name: string, level = process.env.SWARM_LOG_LEVEL ?? 'info', fd: 1 | 2 = 1): Logger {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: fd, sync: true }),
  );
}

/** swarmctl's logger: warnings and errors only, on stderr. */
export function cliLogger(): Logger {
  return createLogger('swarmctl', 'warn', 2);
}

export const silentLogger: Logger = pino({ level: 'silent' });
