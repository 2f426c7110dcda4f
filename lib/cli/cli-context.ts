import fs from 'node:fs';
import path from 'node:path';
import { ChainAnchor } from '../chain-anchor';
import { systemClock } from '../clock';
import { loadHmacKey } from '../hmac-chain';
import { loadConfig, resolveConfigPath, type CompiledConfig } from '../config/config';
import { DB_FILE, openDb, type Db } from '../db';
import { SqliteEventLog } from '../event-log';
import { PROJECTION_FILE } from '../projection';
import { configRedactor } from '../redact';
import { joinOrCreateRun, type RunRecord } from '../run-registry';

// What every swarmctl command starts from: the config named by --config (or
// the usual lookup), and, for commands that write, the log as source swarmctl.

export interface GlobalOptions {
  json?: boolean;
  config?: string;
}

export function cliConfig(opts: GlobalOptions): CompiledConfig {
  const config = loadConfig(resolveConfigPath(opts.config));
  // Ages and leases on the swarm's own time (lib/clock.ts), not on a wall clock someone may have stepped.
  systemClock.share(config.stateDir);
  return config;
}

/** Whether a swarm has ever written here: a command about workers or escalations has nothing to act on before. */
export function hasState(config: CompiledConfig): boolean {
  return fs.existsSync(path.join(config.stateDir, DB_FILE));
}

export interface Writer {
  config: CompiledConfig;
  db: Db;
  run: RunRecord;
  log: SqliteEventLog;
  /** This command started the run. */
  created: boolean;
  close(): void;
}

export function openWriter(opts: GlobalOptions, runOpts: { newIfCompleted?: boolean } = {}): Writer {
  return openWriterFor(cliConfig(opts), runOpts);
}

/** The log as source swarmctl (or the dashboard), for a config already loaded (reload opens it with the running one). */
export function openWriterFor(
  config: CompiledConfig,
  runOpts: { newIfCompleted?: boolean; source?: 'swarmctl' | 'dashboard' } = {},
): Writer {
  process.umask(0o077);
  const db = openDb(config.stateDir);
  systemClock.share(config.stateDir);
  const { run, created } = joinOrCreateRun(db, config.name, systemClock.now(), runOpts);
  const log = new SqliteEventLog(db, {
    source: runOpts.source ?? 'swarmctl',
    runId: () => run.id,
    projection: { file: path.join(config.stateDir, PROJECTION_FILE), maxBytes: config.eventLogMaxBytes },
    redactor: configRedactor(config),
    anchor: ChainAnchor.in(config.stateDir),
    hmacKey: loadHmacKey(config.history.hmacKeyFile),
  });
  if (created)
    log.append({
      kind: 'run.started',
      target: `run:${run.id}`,
      data: { name: config.name, message: `run ${run.id} started by swarmctl` },
    });
  return {
    config,
    db,
    run,
    log,
    created,
    close: () => {
      log.close();
      db.close();
    },
  };
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
