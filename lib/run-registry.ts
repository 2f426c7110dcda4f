import { randomBytes } from 'node:crypto';
import type { Db } from './db';

// The run: one id for the whole life of a piece of work, kept across daemon
// restarts. Whichever daemon starts first creates it; the rest join it.

export interface RunRecord {
  id: string;
  name: string;
  status: 'running' | 'completed';
  startedAt: string;
  completedAt: string | null;
}

interface RunRow {
  id: string;
  name: string;
  status: string;
  started_at: string;
  completed_at: string | null;
}

const toRecord = (r: RunRow): RunRecord => ({
  id: r.id,
  name: r.name,
  status: r.status as RunRecord['status'],
  startedAt: r.started_at,
  completedAt: r.completed_at,
});

export function newRunId(now: number): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `r-${stamp}-${randomBytes(3).toString('hex')}`;
}

export function getRun(db: Db, id: string): RunRecord | null {
  const row = db.prepare<[string], RunRow>('SELECT * FROM runs WHERE id = ?').get(id);
  return row ? toRecord(row) : null;
}

/** Every run, newest first. */
export function listRuns(db: Db): RunRecord[] {
  return db.prepare<[], RunRow>('SELECT * FROM runs ORDER BY rowid DESC').all().map(toRecord);
}

export function latestRun(db: Db): RunRecord | null {
  const row = db.prepare<[], RunRow>('SELECT * FROM runs ORDER BY rowid DESC LIMIT 1').get();
  return row ? toRecord(row) : null;
}

/**
 * Joins the latest run, whatever its status, or creates the first one. A
 * daemon restarted after completion must not start the work over; only
 * `swarmctl up` starts a new run (newRunIfCompleted). Returns whether it was
 * created, so the creator can record run.started in the same breath.
 */
export function joinOrCreateRun(
  db: Db,
  name: string,
  now: number,
  opts: { newIfCompleted?: boolean } = {},
): { run: RunRecord; created: boolean } {
  return db
    .transaction(() => {
      const current = latestRun(db);
      if (current && (current.status === 'running' || !opts.newIfCompleted)) return { run: current, created: false };
      const run: RunRecord = {
        id: newRunId(now),
        name,
        status: 'running',
        startedAt: new Date(now).toISOString(),
        completedAt: null,
      };
      db.prepare('INSERT INTO runs (id, name, status, started_at) VALUES (?, ?, ?, ?)').run(
        run.id,
        name,
        run.status,
        run.startedAt,
      );
      return { run, created: true };
    })
    .immediate();
}

export function completeRun(db: Db, runId: string, now: number): boolean {
  const res = db
    .prepare("UPDATE runs SET status = 'completed', completed_at = ? WHERE id = ? AND status = 'running'")
    .run(new Date(now).toISOString(), runId);
  return res.changes === 1;
}

/** New work for a finished run opens it again. Returns whether it was completed. */
export function reopenRun(db: Db, runId: string): boolean {
  return (
    db
      .prepare("UPDATE runs SET status = 'running', completed_at = NULL WHERE id = ? AND status = 'completed'")
      .run(runId).changes === 1
  );
}

export function getControl(db: Db, key: string): string | null {
  return db.prepare<[string], { value: string }>('SELECT value FROM control WHERE key = ?').get(key)?.value ?? null;
}

export function setControl(db: Db, key: string, value: string): void {
  db.prepare(
    'INSERT INTO control (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  ).run(key, value);
}

export const isPaused = (db: Db): boolean => getControl(db, 'paused') === 'true';
