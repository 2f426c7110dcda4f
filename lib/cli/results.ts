import { openDb } from '../db';
import { UsageError } from '../errors';
import { latestRun } from '../run-registry';
import { cellText, RESULT_COLUMNS, resultRows, type ResultRow } from '../task-results';
import { textTable } from '../text-table';
import { cliConfig, hasState, printJson, type GlobalOptions } from './cli-context';

// swarmctl results: the results table of the latest run (lib/task-results.ts).

export function readResults(stateDir: string, job?: string): ResultRow[] {
  const db = openDb(stateDir, { readonly: true });
  try {
    const run = latestRun(db);
    return run ? resultRows(db, run.id, job) : [];
  } finally {
    db.close();
  }
}

export function resultsCommand(opts: GlobalOptions & { job?: string; tsv?: boolean }): number {
  const config = cliConfig(opts);
  if (opts.job !== undefined && !(opts.job in config.jobs))
    throw new UsageError(
      `--job ${opts.job}: the config ${config.file} has no such job; it has ${Object.keys(config.jobs).join(', ')}`,
    );
  const rows = hasState(config) ? readResults(config.stateDir, opts.job) : [];
  if (opts.json) {
    printJson(rows);
    return 0;
  }
  const lines = rows.map((r) => RESULT_COLUMNS.map((c) => cellText(r[c])));
  if (opts.tsv) {
    process.stdout.write([RESULT_COLUMNS.join('\t'), ...lines.map((l) => l.join('\t'))].join('\n') + '\n');
    return 0;
  }
  if (rows.length === 0) {
    process.stdout.write('No tasks in this run.\n');
    return 0;
  }
  process.stdout.write(
    textTable(
      RESULT_COLUMNS.map((c) => c.toUpperCase()),
      lines,
    ) + '\n',
  );
  return 0;
}
