import path from 'node:path';
import { openDb } from '../db';
import { UsageError } from '../errors';
import { getRun, latestRun, listRuns } from '../run-registry';
import { readRegular } from '../safe-file';
import { buildRunReport, renderRunReport, REPORTS_DIR } from '../session/run-report';
import { cliConfig, hasState, printJson, type GlobalOptions } from './cli-context';

// swarmctl report [RUN]: the end-of-run report session-state-manager wrote
// at run.completed, as written; for a run still going (or one whose report
// could not be written) it is built from the event log now.

export function reportCommand(runArg: string | undefined, opts: GlobalOptions): number {
  const config = cliConfig(opts);
  if (!hasState(config))
    throw new UsageError(`no run to report: no swarm has run with state folder ${config.stateDir}`);
  const db = openDb(config.stateDir, { readonly: true });
  try {
    const run = runArg === undefined ? latestRun(db) : getRun(db, runArg);
    if (!run) {
      const known = listRuns(db)
        .slice(0, 10)
        .map((r) => r.id);
      throw new UsageError(
        runArg === undefined ? 'no run yet' : `no run ${runArg}; the latest here: ${known.join(', ') || 'none'}`,
      );
    }
    // The id comes from swarm.db, never from the argument: no path but the reports folder is read.
    const written =
      run.status === 'completed'
        ? readRegular(path.join(config.stateDir, REPORTS_DIR, `${run.id}.${opts.json ? 'json' : 'md'}`))
        : null;
    if (written !== null) {
      process.stdout.write(written);
      return 0;
    }
    const report = buildRunReport(db, run);
    if (opts.json) printJson(report);
    else process.stdout.write(renderRunReport(report));
    return 0;
  } finally {
    db.close();
  }
}
