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
}

const toRecord = (r: TaskRow): TaskRecord => ({
  runId: r.run_id, id: r.id, job: r.job, args: JSON.parse(r.args) as string[], lane: r.lane,
  status: r.status as TaskStatus, attempts: r.attempts, queuedAt: r.queued_at,
});

/** Inserts a task unless one with that id exists in the run. Returns whether it was added. */
export function enqueueTask(db: Db, t: Omit<TaskRecord, 'status' | 'attempts'>): boolean {
  const res = db
    .prepare("INSERT OR IGNORE INTO tasks (run_id, id, job, args, lane, status, attempts, queued_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?)")
    .run(t.runId, t.id, t.job, JSON.stringify(t.args), t.lane, t.queuedAt, t.queuedAt);
  return res.changes === 1;
}

export function getTask(db: Db, runId: string, id: string): TaskRecord | null {
  const row = db.prepare<[string, string], TaskRow>('SELECT * FROM tasks WHERE run_id = ? AND id = ?').get(runId, id);
  return row ? toRecord(row) : null;
}

/** Queued tasks of a lane in submission order. */
export function queuedTasks(db: Db, runId: string, lane: string, limit: number): TaskRecord[] {
  return db
    .prepare<[string, string, number], TaskRow>("SELECT * FROM tasks WHERE run_id = ? AND lane = ? AND status = 'queued' ORDER BY rowid LIMIT ?")
    .all(runId, lane, limit)
    .map(toRecord);
}

export function tasksWithStatus(db: Db, runId: string, status: TaskStatus): TaskRecord[] {
  return db.prepare<[string, string], TaskRow>('SELECT * FROM tasks WHERE run_id = ? AND status = ? ORDER BY rowid').all(runId, status).map(toRecord);
}

/** The job and id of every task of the run, whatever its status: what worker ids it has used. */
export function taskKeys(db: Db, runId: string): { job: string; id: string }[] {
  return db.prepare<[string], { job: string; id: string }>('SELECT job, id FROM tasks WHERE run_id = ? ORDER BY rowid').all(runId);
}

export function setTaskStatus(db: Db, runId: string, id: string, status: TaskStatus, now: string, bumpAttempt = false): void {
  db.prepare(`UPDATE tasks SET status = ?, updated_at = ?${bumpAttempt ? ', attempts = attempts + 1' : ''} WHERE run_id = ? AND id = ?`).run(
    status, now, runId, id,
  );
}

export function countTasks(db: Db, runId: string): Record<TaskStatus, number> {
  const counts: Record<TaskStatus, number> = { queued: 0, running: 0, completed: 0, failed: 0, quarantined: 0 };
  for (const r of db.prepare<[string], { status: string; n: number }>('SELECT status, count(*) AS n FROM tasks WHERE run_id = ? GROUP BY status').all(runId)) {
    if (r.status in counts) counts[r.status as TaskStatus] = r.n;
  }
  return counts;
}
