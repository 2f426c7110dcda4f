import fs from 'node:fs';
import path from 'node:path';
import { iso, systemClock } from '../clock';
import { loadConfig, loadConfigText, resolveConfigPath } from '../config/config';
import { publishedConfig, reloadConfig, stateDirFor } from '../config/reload';
import { DB_FILE, openDb } from '../db';
import { ConfigError, UsageError } from '../errors';
import { DAEMON_NAMES } from '../event-kinds';
import { daemonView } from '../snapshot';
import { DAEMON_STATE_FILES, DaemonHeaderSchema } from '../state-files';
import { readStateFile } from '../state-store';
import { openWriterFor, printJson, type GlobalOptions } from './cli-context';

// swarmctl reload [--now]: validate the config file and publish it to the
// running daemons (lib/config/reload.ts), then wait a little for each
// daemon to say it runs it. A bad file is refused with exit 2, the field
// named, and recorded as config.rejected; the running config stays.

const WAIT_FOR_DAEMONS_MS = 15_000;

function runningVersions(stateDir: string): Record<string, string | null> {
  const now = systemClock.now();
  const out: Record<string, string | null> = {};
  for (const name of DAEMON_NAMES) {
    if (daemonView(stateDir, name, now).status !== 'online') continue;
    const h = readStateFile(path.join(stateDir, DAEMON_STATE_FILES[name]), DaemonHeaderSchema);
    out[name] = h.ok && typeof h.value.configVersion === 'string' ? h.value.configVersion : null;
  }
  return out;
}

export async function reloadCommand(opts: GlobalOptions & { now?: boolean }): Promise<number> {
  const file = resolveConfigPath(opts.config);
  let stateDir: string;
  try {
    stateDir = loadConfig(file).stateDir;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stateDir = stateDirFor(file);
  }
  if (!fs.existsSync(path.join(stateDir, DB_FILE)))
    throw new UsageError(
      `nothing to reload: no swarm has run with state folder ${stateDir}; start it with swarmctl up`,
    );
  const probe = openDb(stateDir, { readonly: true });
  const running = publishedConfig(probe);
  probe.close();
  // The log is opened with the config the swarm runs: the new file may not be valid.
  const w = openWriterFor(running ? loadConfigText(running.text, running.file) : loadConfig(file));
  try {
    const r = reloadConfig({ db: w.db, log: w.log, file, now: opts.now === true, at: iso(systemClock.now()) });
    if (r.kind === 'rejected') {
      if (opts.json) printJson({ outcome: 'rejected', version: r.version, error: r.error.message });
      process.stderr.write(`swarmctl: ${r.error.message}\nThe running config stays in force.\n`);
      return 2;
    }
    if (r.kind === 'unchanged') {
      if (opts.json) printJson({ outcome: 'unchanged', version: r.version });
      else process.stdout.write(`config ${r.version} is already the one the swarm runs\n`);
      return 0;
    }
    const deadline = Date.now() + WAIT_FOR_DAEMONS_MS;
    let versions = runningVersions(stateDir);
    while (Object.values(versions).some((v) => v !== r.version) && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 200));
      versions = runningVersions(stateDir);
    }
    const behind = Object.entries(versions)
      .filter(([, v]) => v !== r.version)
      .map(([n]) => n);
    if (opts.json)
      printJson({ outcome: 'reloaded', version: r.version, previous: r.previous, diff: r.diff, daemons: versions });
    else {
      const d = r.diff;
      process.stdout.write(`config ${r.version} published (was ${r.previous ?? 'none'})\n`);
      for (const [what, list] of [
        ['added', d.added],
        ['removed', d.removed],
        ['changed', d.changed],
      ] as const)
        if (list.length) process.stdout.write(`  ${what}: ${list.join(', ')}\n`);
      process.stdout.write(
        behind.length
          ? `not applied yet by: ${behind.join(', ')} (swarmctl status warns until they do)\n`
          : `applied by every running daemon\n`,
      );
    }
    return 0;
  } finally {
    w.close();
  }
}
