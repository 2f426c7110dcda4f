import { resolveConfigPath } from '../config/config';
import { runningConfig } from '../config/reload';
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
    const running = runningConfig(resolveConfigPath(opts.config));
    if (!running) throw err;
    const snap = buildSnapshot(running.config);
    const [head, ...faults] = err.message.split('\n');
    snap.problems.unshift(
      `${head} so this is the swarm as it runs (config ${running.version}); fix the file: ${faults.map((l) => l.trim()).join('; ')}`,
    );
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
