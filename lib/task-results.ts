import type { Db } from './db';
import { allTasks } from './task-queue';

// One row per task of a run, the experiment loop's results table: how it
// ended, in how many attempts and how long, its final metric and best (as
// its worker last reported them), and what its verify guard said. Read by
// `swarmctl results` and the end-of-run report.

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

export const RESULT_COLUMNS = ['task', 'job', 'status', 'attempts', 'runtimeMs', 'metric', 'best', 'verify'] as const;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function resultRows(db: Db, runId: string, job?: string): ResultRow[] {
  const ends = new Map<string, { kind: string; data: Record<string, unknown> }[]>();
  const rows = db
    .prepare<[string], { kind: string; target: string; data: string }>(
      "SELECT kind, target, data FROM events WHERE run_id = ? AND kind IN ('task.completed', 'task.failed') ORDER BY seq",
    )
    .all(runId);
  for (const r of rows) {
    const id = r.target.slice('task:'.length);
    ends.set(id, [...(ends.get(id) ?? []), { kind: r.kind, data: JSON.parse(r.data) as Record<string, unknown> }]);
  }
  return allTasks(db, runId)
    .filter((t) => job === undefined || t.job === job)
    .map((t) => {
      const seen = ends.get(t.id) ?? [];
      const done = seen.filter((e) => e.kind === 'task.completed').at(-1)?.data;
      const refused = seen.some((e) => e.kind === 'task.failed' && e.data.class === 'validation_failed');
      return {
        task: t.id,
        job: t.job,
        status: t.status,
        attempts: t.attempts,
        runtimeMs: num(done?.runtimeMs),
        metric: num(done?.metric),
        best: num(done?.best),
        verify: done?.verify ? 'passed' : refused ? 'failed' : null,
      };
    });
}

export const cellText = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));
