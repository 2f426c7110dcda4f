import { buildSnapshot } from '../snapshot';
import { cliConfig, printJson, type GlobalOptions } from './cli-context';
import { renderStatus } from './status-view';

export function queryCommand(opts: GlobalOptions): number {
  const snap = buildSnapshot(cliConfig(opts));
  printJson(snap);
  return 0;
}

export function statusCommand(opts: GlobalOptions): number {
  const snap = buildSnapshot(cliConfig(opts));
  if (opts.json) printJson(snap);
  else process.stdout.write(renderStatus(snap));
  return snap.problems.length > 0 ? 1 : 0;
}

