import fs from 'node:fs';
import path from 'node:path';
import { configVersion, loadConfigText, readConfigText, type CompiledConfig } from './config';
import { ConfigSchema } from './schema';
import { DB_FILE, openDb, type Db } from '../db';
import { ConfigError } from '../errors';
import type { EventLog } from '../event-log';
import { getControl, setControl } from '../run-registry';

// Changing the config without stopping the work, as `nginx -s reload` or
// `systemctl reload`: the new file is validated first, and only a good one
// is published, in swarm.db, as the text every daemon then compiles and
// applies on its next tick (daemon-runtime.ts). A bad one is refused with
// the field named and the running config stays in force. Triggered by
// `swarmctl reload` and by the watchdog's watch on the file.

const KEY = 'config:current';

export interface PublishedConfig {
  version: string;
  text: string;
  file: string;
  /** `reload --now`: workers of removed jobs stop at once instead of finishing their task. */
  now: boolean;
  at: string;
}

export interface ConfigDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

export type ReloadOutcome =
  | { kind: 'reloaded'; version: string; previous: string | null; diff: ConfigDiff }
  | { kind: 'unchanged'; version: string }
  | { kind: 'rejected'; version: string; error: ConfigError };

/**
 * Fields a running swarm cannot take on: where its history lives and who it
 * is, and what is read once at a daemon's start. Changing them needs
 * `swarmctl down` and `up`.
 */
const NEEDS_RESTART = ['name', 'stateDir', 'history', 'postgres'] as const;

export function publishedConfig(db: Db): PublishedConfig | null {
  const raw = getControl(db, KEY);
  return raw ? (JSON.parse(raw) as PublishedConfig) : null;
}

/** The config a daemon started with counts as published when none is: the first reload diffs against it. */
export function publishIfNone(db: Db, config: CompiledConfig, nowIso: string): void {
  db.prepare('INSERT OR IGNORE INTO control (key, value) VALUES (?, ?)').run(
    KEY,
    JSON.stringify({
      version: config.version,
      text: config.text,
      file: config.file,
      now: false,
      at: nowIso,
    } satisfies PublishedConfig),
  );
}

/** Dotted paths of what differs between two configs, defaults filled in, arrays compared whole. */
export function diffConfig(before: unknown, after: unknown): ConfigDiff {
  const out: ConfigDiff = { added: [], removed: [], changed: [] };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const walk = (a: unknown, b: unknown, at: string) => {
    if (isObj(a) && isObj(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        const p = at ? `${at}.${k}` : k;
        if (!(k in a)) out.added.push(p);
        else if (!(k in b)) out.removed.push(p);
        else walk(a[k], b[k], p);
      }
    } else if (JSON.stringify(a) !== JSON.stringify(b)) out.changed.push(at);
  };
  walk(before, after, '');
  return out;
}

const parsedOf = (text: string): unknown => ConfigSchema.parse(JSON.parse(text));

/**
 * Validates the file and, when it is good and new, publishes it and records
 * config.reloaded with the diff; when bad, records config.rejected. The
 * running config is never touched here: the daemons take the published one.
 */
export function reloadConfig(deps: {
  db: Db;
  log: EventLog;
  file: string;
  now: boolean;
  env?: NodeJS.ProcessEnv;
  at: string;
}): ReloadOutcome {
  const { db, log, file } = deps;
  let text = '';
  let next: CompiledConfig;
  try {
    text = readConfigText(file);
    next = loadConfigText(text, file, deps.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return reject(log, configVersion(text), err);
  }
  const current = publishedConfig(db);
  if (current?.version === next.version && !deps.now) return { kind: 'unchanged', version: next.version };
  if (current) {
    const prev = loadConfigText(current.text, current.file, deps.env);
    const diff = diffConfig(parsedOf(current.text), parsedOf(text));
    const fixed = NEEDS_RESTART.filter((f) =>
      [...diff.added, ...diff.removed, ...diff.changed].some((p) => p === f || p.startsWith(`${f}.`)),
    );
    // stateDir counts by where it points, not how it is written.
    if (prev.stateDir !== next.stateDir && !fixed.includes('stateDir')) fixed.push('stateDir');
    if (fixed.length) {
      return reject(
        log,
        next.version,
        new ConfigError(
          file,
          fixed.map((f) => ({
            path: f,
            message: 'cannot change while the swarm runs; run swarmctl down, then swarmctl up',
          })),
        ),
      );
    }
  }
  const diff = current ? diffConfig(parsedOf(current.text), parsedOf(text)) : { added: [], removed: [], changed: [] };
  // Compare and set: swarmctl reload and the watchdog's file watch may both see one edit; one publishes it.
  const won = db
    .transaction(() => {
      if (publishedConfig(db)?.version !== current?.version) return false;
      setControl(
        db,
        KEY,
        JSON.stringify({
          version: next.version,
          text,
          file: next.file,
          now: deps.now,
          at: deps.at,
        } satisfies PublishedConfig),
      );
      return true;
    })
    .immediate();
  if (!won) return { kind: 'unchanged', version: next.version };
  const parts = [
    diff.added.length && `added ${diff.added.join(', ')}`,
    diff.removed.length && `removed ${diff.removed.join(', ')}`,
    diff.changed.length && `changed ${diff.changed.join(', ')}`,
  ].filter(Boolean);
  log.append({
    kind: 'config.reloaded',
    target: `state:${path.basename(file)}`,
    data: {
      version: next.version,
      previous: current?.version ?? null,
      diff,
      now: deps.now,
      message: `config ${next.version} published${current ? ` over ${current.version}` : ''}: ${parts.join('; ') || 'no change'}`,
    },
  });
  return { kind: 'reloaded', version: next.version, previous: current?.version ?? null, diff };
}

function reject(log: EventLog, version: string, error: ConfigError): ReloadOutcome {
  log.append({
    kind: 'config.rejected',
    target: `state:${path.basename(error.file)}`,
    severity: 'warn',
    data: {
      version,
      error: error.message,
      message: `config not applied; the running one stays in force: ${error.message}`,
    },
  });
  return { kind: 'rejected', version, error };
}

/**
 * The config a swarm runs, as last published in its swarm.db, for when the
 * file itself is not valid (half-edited, or refused by a reload): a daemon
 * restarting then, and `query`, carry on with it. Null when no swarm has
 * published one there.
 */
export function runningConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): { config: CompiledConfig; version: string } | null {
  const stateDir = stateDirFor(file, env);
  if (!fs.existsSync(path.join(stateDir, DB_FILE))) return null;
  const db = openDb(stateDir, { readonly: true });
  try {
    const published = publishedConfig(db);
    return published
      ? { config: loadConfigText(published.text, published.file, env), version: published.version }
      : null;
  } finally {
    db.close();
  }
}

/**
 * Where the swarm's state folder is when the new file cannot say (it is
 * not valid): SWARM_STATE_DIR, else the file's own stateDir if it is
 * readable JSON, else "state" beside it.
 */
export function stateDirFor(file: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.SWARM_STATE_DIR) return path.resolve(env.SWARM_STATE_DIR);
  let dir = 'state';
  try {
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { stateDir?: unknown };
    if (typeof raw.stateDir === 'string') dir = raw.stateDir;
  } catch {
    // Not readable JSON: the caller reports that, naming the file; only the folder is guessed here.
  }
  return path.resolve(path.dirname(path.resolve(file)), dir);
}
