import { systemClock } from './clock';
import { loadConfig, resolveConfigPath, type CompiledConfig } from './config/config';
import { runningConfig } from './config/reload';
import { pm2Home } from './pm2-home';
import { lockRefusal, takeLock } from './state-lock';
import { loadSecrets } from './daemon-env';
import { HmacKeyError, loadHmacKey } from './hmac-chain';
import { openDb } from './db';
import { CANNOT_START_EXIT, ConfigError, errorMessage, StateFolderInUseError } from './errors';
import type { DaemonName } from './event-kinds';
import { DaemonRuntime, type DaemonBehavior, type RuntimeDeps } from './daemon-runtime';
import { createLogger, type Logger } from './logger';
import { installSignalHandlers } from './signals';
import { JsonStateStore } from './state-store';

// The entry point every daemon file calls: config, database, runtime,
// signals. A bad config exits 2 before anything starts.

/**
 * Under PM2 (started by `pm2 start ecosystem.config.js` as much as by
 * swarmctl up), the PM2 daemon that is this process's parent holds the state
 * folder; a folder another PM2 holds is refused (lib/state-lock.ts).
 */
function claimStateFolder(config: CompiledConfig): void {
  if (process.env.pm_id === undefined) return;
  const home = pm2Home();
  const refused = lockRefusal(config.stateDir, home);
  if (refused) throw new StateFolderInUseError(refused);
  takeLock(
    config.stateDir,
    { swarm: config.name, config: config.file, pm2Home: home, pm2Pid: process.ppid },
    new Date(),
  );
}

/**
 * The config file, or, when it is not valid but this swarm already runs on
 * a published config (the file half-edited, or refused by a reload), that
 * one: a daemon restarting then carries on instead of staying down. With
 * nothing published, the file's error stands and the daemon exits 2.
 */
function startingConfig(file: string, logger: Logger): CompiledConfig {
  try {
    return loadConfig(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const running = runningConfig(file);
    if (!running) throw err;
    logger.warn(
      { file, err: err.message, version: running.version },
      'config file invalid; starting on the config the swarm runs',
    );
    return running.config;
  }
}

export function runDaemon(name: DaemonName, makeBehavior: (deps: RuntimeDeps) => DaemonBehavior): void {
  process.umask(0o077);
  const logger = createLogger(name);
  let deps: RuntimeDeps;
  try {
    const config = startingConfig(resolveConfigPath(undefined), logger);
    // PM2 holds no secret for us (scripts/daemon-env.js): what the config needs is in secrets.json. Read before
    // anything builds a redactor or a connection from process.env.
    for (const [k, v] of Object.entries(loadSecrets(config.stateDir))) process.env[k] ??= v;
    claimStateFolder(config);
    // A key file that is missing, loose or short stops the daemon here, as a bad config does, with the reason.
    const hmacKey = loadHmacKey(config.history.hmacKeyFile);
    deps = {
      name,
      config,
      db: openDb(config.stateDir),
      state: new JsonStateStore(config.stateDir),
      clock: systemClock,
      logger,
      hmacKey,
    };
    // Every process of this swarm measures time on one anchor (lib/clock.ts), whatever the wall clock does.
    systemClock.share(config.stateDir);
  } catch (err) {
    logger.fatal(
      { err: errorMessage(err) },
      err instanceof ConfigError || err instanceof HmacKeyError
        ? 'invalid config'
        : err instanceof StateFolderInUseError
          ? 'state folder in use'
          : 'cannot start',
    );
    process.exit(CANNOT_START_EXIT);
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
