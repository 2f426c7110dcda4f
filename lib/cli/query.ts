import fs from 'node:fs';
import path from 'node:path';
import { loadConfigText, resolveConfigPath } from '../config';
import { publishedConfig, stateDirFor } from '../config-reload';
import { DB_FILE, openDb } from '../db';
import { ConfigError } from '../errors';
import { buildSnapshot, type Snapshot } from '../snapshot';
import { cliConfig, printJson, type GlobalOptions } from './cli-context';
import { renderStatus } from './status-view';

/**
 * The snapshot needs the config only to find the state folder and to name
 * things. A file half-edited (or refused by a reload) must not blind a
 * person to a swarm that runs: then the config the swarm runs, as published
 * in swarm.db, is used, and the first problem says so.
 */
function snapshot(opts: GlobalOptions): Snapshot {
  try {
    return buildSnapshot(cliConfig(opts));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const stateDir = stateDirFor(resolveConfigPath(opts.config));
    if (!fs.existsSync(path.join(stateDir, DB_FILE))) throw err;
    const db = openDb(stateDir, { readonly: true });
    let published;
    try {
      published = publishedConfig(db);
    } finally {
      db.close();
    }
    if (!published) throw err;
    const snap = buildSnapshot(loadConfigText(published.text, published.file));
    snap.problems.unshift(`${err.message.split('\n')[0]} so this is the swarm as it runs (config ${published.version}); fix the file: ${err.message.split('\n').slice(1).map((l) => l.trim()).join('; ')}`);
    return snap;
  }
}

export function queryCommand(opts: GlobalOptions): number {
  const snap = snapshot(opts);
  printJson(snap);
  return 0;
}

export function statusCommand(opts: GlobalOptions): number {
  const snap = snapshot(opts);
  if (opts.json) printJson(snap);
  else process.stdout.write(renderStatus(snap));
  return snap.problems.length > 0 ? 1 : 0;
}

