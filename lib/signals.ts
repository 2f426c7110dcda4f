import type { Logger } from './logger';

// One signal handler per process. The first SIGINT/SIGTERM asks for a
// graceful stop; if that has not finished before PM2's kill_timeout, or a
// second signal arrives, the process exits at once.

export const KILL_TIMEOUT_MS = 5000;

export function installSignalHandlers(
  stop: (reason: string) => Promise<void>,
  logger: Logger,
  forceAfterMs = KILL_TIMEOUT_MS - 1000,
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: forced exit');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, forceAfterMs }, 'signal: graceful stop');
    const force = setTimeout(() => {
      logger.error({ signal, forceAfterMs }, 'graceful stop overran: forced exit');
      process.exit(1);
    }, forceAfterMs);
    force.unref();
    stop(`signal ${signal}`).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: String(err) }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
