import { systemClock } from './clock';
import { loadConfig, resolveConfigPath } from './config';
import { openDb } from './db';
import { ConfigError, errorMessage } from './errors';
import type { DaemonName } from './event-kinds';
import { DaemonRuntime, type DaemonBehavior, type RuntimeDeps } from './daemon-runtime';
import { createLogger } from './logger';
import { installSignalHandlers } from './signals';
import { JsonStateStore } from './state-store';

// The entry point every daemon file calls: config, database, runtime,
// signals. A bad config exits 2 before anything starts.

export function runDaemon(name: DaemonName, makeBehavior: (deps: RuntimeDeps) => DaemonBehavior): void {
  process.umask(0o077);
  const logger = createLogger(name);
  let deps: RuntimeDeps;
  try {
    const config = loadConfig(resolveConfigPath(undefined));
    deps = { name, config, db: openDb(config.stateDir), state: new JsonStateStore(config.stateDir), clock: systemClock, logger };
  } catch (err) {
    logger.fatal({ err: errorMessage(err) }, err instanceof ConfigError ? 'invalid config' : 'cannot start');
    process.exit(2);
  }
  const runtime = new DaemonRuntime(deps, makeBehavior(deps));
  installSignalHandlers(async (reason) => {
    await runtime.stop(reason);
    deps.db.close();
  }, logger);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err: errorMessage(err), stack: err.stack }, 'uncaught exception');
    process.exit(1);
  });
  runtime.start().catch((err: unknown) => {
    logger.fatal({ err: errorMessage(err), stack: (err as Error).stack }, 'start failed');
    process.exit(1);
  });
}
