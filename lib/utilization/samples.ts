import type { Db } from '../db';

// Utilization over time, per series ('cpu', 'mem', 'lane:NAME:busy',
// 'gpu:N:util', 'gpu:N:mem'), bounded by the configured retention so a later
// page can plot it without the table growing for ever.

export function recordSamples(db: Db, at: number, values: Record<string, number | null>): void {
  const insert = db.prepare('INSERT INTO samples (ts, series, value) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (const [series, value] of Object.entries(values)) insert.run(at, series, value);
  })();
}

export function pruneSamples(db: Db, olderThan: number): number {
  return db.prepare('DELETE FROM samples WHERE ts < ?').run(olderThan).changes;
}
