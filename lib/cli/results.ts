import { openDb } from '../db';
import { UsageError } from '../errors';
import { latestRun } from '../run-registry';
import { allTasks } from '../task-queue';
import { cliConfig, hasState, printJson, type GlobalOptions } from './cli-context';

// swarmctl results: the experiment loop's results table, one row per task
// of the run: how it ended, in how many attempts and how long, its final
// metric and best (as its worker last reported them), and what its verify
// guard said.

export interface ResultRow {
  task: string;
  job: string;
  status: string;
  attempts: number;
  runtimeMs: number | null;
  metric: number | null;
  best: number | null;
  /** passed, failed (its guard refused a result and it never passed), or null: no guard ran. */
  verify: 'passed' | 'failed' | null;
}

const COLUMNS = ['task', 'job', 'status', 'attempts', 'runtimeMs', 'metric', 'best', 'verify'] as const;

export function readResults(stateDir: string, job?: string): ResultRow[] {
  const db = openDb(stateDir, { readonly: true });
  try {
    const run = latestRun(db);
    if (!run) return [];
    const ends = new Map<string, { kind: string; data: Record<string, unknown> }[]>();
    const rows = db.prepare<[string], { kind: string; target: string; data: string }>("SELECT kind, target, data FROM events WHERE run_id = ? AND kind IN ('task.completed', 'task.failed') ORDER BY seq").all(run.id);
    for (const r of rows) {
      const id = r.target.slice('task:'.length);
      ends.set(id, [...(ends.get(id) ?? []), { kind: r.kind, data: JSON.parse(r.data) as Record<string, unknown> }]);
    }
    return allTasks(db, run.id)
      .filter((t) => job === undefined || t.job === job)
      .map((t) => {
        const seen = ends.get(t.id) ?? [];
        const done = seen.filter((e) => e.kind === 'task.completed').at(-1)?.data;
        const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
        const refused = seen.some((e) => e.kind === 'task.failed' && e.data.class === 'validation_failed');
        return {
          task: t.id, job: t.job, status: t.status, attempts: t.attempts,
          runtimeMs: num(done?.runtimeMs), metric: num(done?.metric), best: num(done?.best),
          verify: done?.verify ? 'passed' : refused ? 'failed' : null,
        };
      });
  } finally {
    db.close();
  }
}

export function resultsCommand(opts: GlobalOptions & { job?: string; tsv?: boolean }): number {
  const config = cliConfig(opts);
  if (opts.job !== undefined && !(opts.job in config.jobs)) throw new UsageError(`--job ${opts.job}: the config ${config.file} has no such job; it has ${Object.keys(config.jobs).join(', ')}`);
  const rows = hasState(config) ? readResults(config.stateDir, opts.job) : [];
  if (opts.json) {
    printJson(rows);
    return 0;
  }
  const cell = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));
  const lines = rows.map((r) => COLUMNS.map((c) => cell(r[c])));
  if (opts.tsv) {
    process.stdout.write([COLUMNS.join('\t'), ...lines.map((l) => l.join('\t'))].join('\n') + '\n');
    return 0;
  }
  if (rows.length === 0) {
    process.stdout.write('No tasks in this run.\n');
    return 0;
  }
  const head = COLUMNS.map((c) => c.toUpperCase());
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write([fmt(head), ...lines.map(fmt)].join('\n') + '\n');
  return 0;
}
