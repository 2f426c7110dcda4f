import type { Db } from './db';

// Queued tasks live in SQLite so that `swarmctl submit` and the sentry share
// one queue, and `query` can count them at any moment with one statement.

export const TASK_STATUSES = ['queued', 'running', 'completed', 'failed', 'quarantined'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface TaskRecord {
  runId: string;
  id: string;
  job: string;
  args: string[];
  lane: string;
  status: TaskStatus;
  attempts: number;
  queuedAt: string;
  /** Higher runs first; FIFO within one priority. */
  priority: number;
  /** Task ids that must complete before this one starts. */
  after: string[];
}

interface TaskRow {
  run_id: string;
  id: string;
  job: string;
  args: string;
  lane: string;
  status: string;
  attempts: number;
  queued_at: string;
  priority: number;
  deps: string;
}

const toRecord = (r: TaskRow): TaskRecord => ({
  runId: r.run_id,
  id: r.id,
  job: r.job,
  args: JSON.parse(r.args) as string[],
  lane: r.lane,
  status: r.status as TaskStatus,
  attempts: r.attempts,
  queuedAt: r.queued_at,
  priority: r.priority,
  after: JSON.parse(r.deps) as string[],
});

/** Statuses from which a task never runs again on its own: its dependents cannot start. */
export const FAILED_FOR_GOOD: readonly TaskStatus[] = ['failed', 'quarantined'];

/** Inserts a task unless one with that id exists in the run. Returns whether it was added. */
export function enqueueTask(
  db: Db,
  t: Omit<TaskRecord, 'status' | 'attempts' | 'priority' | 'after'> & { priority?: number; after?: string[] },
): boolean {
  const res = db
    .prepare(
      "INSERT OR IGNORE INTO tasks (run_id, id, job, args, lane, status, attempts, queued_at, updated_at, priority, deps) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)",
    )
    .run(
      t.runId,
      t.id,
      t.job,
      JSON.stringify(t.args),
      t.lane,
      t.queuedAt,
      t.queuedAt,
      t.priority ?? 0,
      JSON.stringify(t.after ?? []),
    );
  return res.changes === 1;
}

export function getTask(db: Db, runId: string, id: string): TaskRecord | null {
  const row = db.prepare<[string, string], TaskRow>('SELECT * FROM tasks WHERE run_id = ? AND id = ?').get(runId, id);
  return row ? toRecord(row) : null;
}

/**
 * Queued tasks of a lane that may start now: every task they are `after` has
 * completed. Higher priority first, then in submission order.
 */
export function queuedTasks(db: Db, runId: string, lane: string, limit: number): TaskRecord[] {
  return db
    .prepare<[string, string, number], TaskRow>(
      `SELECT * FROM tasks t WHERE run_id = ? AND lane = ? AND status = 'queued'
         AND NOT EXISTS (SELECT 1 FROM json_each(t.deps) d LEFT JOIN tasks x ON x.run_id = t.run_id AND x.id = d.value WHERE x.status IS NOT 'completed')
       ORDER BY priority DESC, rowid LIMIT ?`,
    )
    .all(runId, lane, limit)
    .map(toRecord);
}

/** Queued tasks with a dependency that failed for good, each with that dependency. */
export function doomedTasks(
  db: Db,
  runId: string,
): { task: TaskRecord; dependency: string; dependencyStatus: TaskStatus }[] {
  const failed = FAILED_FOR_GOOD.map((s) => `'${s}'`).join(', ');
  return db
    .prepare<[string], TaskRow & { dep: string; dep_status: string }>(
      `SELECT t.*, x.id AS dep, x.status AS dep_status FROM tasks t, json_each(t.deps) d JOIN tasks x ON x.run_id = t.run_id AND x.id = d.value
       WHERE t.run_id = ? AND t.status = 'queued' AND x.status IN (${failed}) GROUP BY t.id ORDER BY t.rowid`,
    )
    .all(runId)
    .map((r) => ({ task: toRecord(r), dependency: r.dep, dependencyStatus: r.dep_status as TaskStatus }));
}

/** The first cycle among tasks' `after` lists, as the ids along it (a → b → a), or null. */
export function findCycle(after: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] | null => {
    if (state.get(id) === 'done') return null;
    if (state.get(id) === 'open') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'open');
    path.push(id);
    for (const next of after.get(id) ?? []) {
      const c = visit(next);
      if (c) return c;
    }
    path.pop();
    state.set(id, 'done');
    return null;
  };
  for (const id of after.keys()) {
    const c = visit(id);
    if (c) return c;
  }
  return null;
}

/** Every task of the run, in submission order. */
export function allTasks(db: Db, runId: string): TaskRecord[] {
  return db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE run_id = ? ORDER BY rowid').all(runId).map(toRecord);
}

export function tasksWithStatus(db: Db, runId: string, status: TaskStatus): TaskRecord[] {
  return db
    .prepare<[string, string], TaskRow>('SELECT * FROM tasks WHERE run_id = ? AND status = ? ORDER BY rowid')
    .all(runId, status)
    .map(toRecord);
}

/** The job and id of every task of the run, whatever its status: what worker ids it has used. */
export function taskKeys(db: Db, runId: string): { job: string; id: string }[] {
  return db
    .prepare<[string], { job: string; id: string }>('SELECT job, id FROM tasks WHERE run_id = ? ORDER BY rowid')
    .all(runId);
}

export function setTaskStatus(
  db: Db,
  runId: string,
  id: string,
  status: TaskStatus,
  now: string,
  bumpAttempt = false,
): void {
  db.prepare(
    `UPDATE tasks SET status = ?, updated_at = ?${bumpAttempt ? ', attempts = attempts + 1' : ''} WHERE run_id = ? AND id = ?`,
  ).run(status, now, runId, id);
}

export function countTasks(db: Db, runId: string): Record<TaskStatus, number> {
  const counts: Record<TaskStatus, number> = { queued: 0, running: 0, completed: 0, failed: 0, quarantined: 0 };
  for (const r of db
    .prepare<[string], { status: string; n: number }>(
      'SELECT status, count(*) AS n FROM tasks WHERE run_id = ? GROUP BY status',
    )
    .all(runId)) {
    if (r.status in counts) counts[r.status as TaskStatus] = r.n;
  }
  return counts;
}
