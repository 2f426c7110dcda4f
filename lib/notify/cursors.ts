import type { Db } from '../db';

// What each notify endpoint is owed, kept in swarm.db so a sender killed
// mid-delivery carries on after its restart: one cursor over the event log
// per endpoint. Every event up to `seq` is delivered, given up on, or not one
// the endpoint asked for; `failures` counts the failed attempts at the next
// one, and `nextAt` (the swarm's clock) is when it may be tried again.

export interface NotifyCursor {
  endpoint: string;
  seq: number;
  failures: number;
  nextAt: number | null;
  lastError: string | null;
  /** Totals over the endpoint's life, for metrics: 2xx answers, failed attempts, events given up. */
  delivered: number;
  failedAttempts: number;
  givenUp: number;
}

interface Row {
  endpoint: string;
  seq: number;
  failures: number;
  next_at: number | null;
  last_error: string | null;
  delivered: number;
  failed_attempts: number;
  given_up: number;
}

const toCursor = (r: Row): NotifyCursor => ({
  endpoint: r.endpoint,
  seq: r.seq,
  failures: r.failures,
  nextAt: r.next_at,
  lastError: r.last_error,
  delivered: r.delivered,
  failedAttempts: r.failed_attempts,
  givenUp: r.given_up,
});

export class NotifyCursors {
  constructor(private readonly db: Db) {}

  get(endpoint: string): NotifyCursor | null {
    const r = this.db.prepare<[string], Row>('SELECT * FROM notify_cursors WHERE endpoint = ?').get(endpoint);
    return r ? toCursor(r) : null;
  }

  all(): NotifyCursor[] {
    return this.db.prepare<[], Row>('SELECT * FROM notify_cursors ORDER BY endpoint').all().map(toCursor);
  }

  /** A new endpoint starts after `seq`; one that exists keeps its place. */
  open(endpoint: string, seq: number): NotifyCursor {
    this.db.prepare('INSERT OR IGNORE INTO notify_cursors (endpoint, seq) VALUES (?, ?)').run(endpoint, seq);
    return this.get(endpoint) as NotifyCursor;
  }

  /** Events up to `seq` are not for this endpoint. */
  skip(endpoint: string, seq: number): void {
    this.db.prepare('UPDATE notify_cursors SET seq = max(seq, ?) WHERE endpoint = ?').run(seq, endpoint);
  }

  delivered(endpoint: string, seq: number): void {
    this.db
      .prepare(
        'UPDATE notify_cursors SET seq = ?, failures = 0, next_at = NULL, last_error = NULL, delivered = delivered + 1 WHERE endpoint = ?',
      )
      .run(seq, endpoint);
  }

  failedAttempt(endpoint: string, error: string, nextAt: number): void {
    this.db
      .prepare(
        'UPDATE notify_cursors SET failures = failures + 1, failed_attempts = failed_attempts + 1, next_at = ?, last_error = ? WHERE endpoint = ?',
      )
      .run(nextAt, error, endpoint);
  }

  /** The event at `seq` is given up after its last attempt; the next one starts afresh. */
  gaveUp(endpoint: string, seq: number, error: string): void {
    this.db
      .prepare(
        'UPDATE notify_cursors SET seq = ?, failures = 0, next_at = NULL, last_error = ?, failed_attempts = failed_attempts + 1, given_up = given_up + 1 WHERE endpoint = ?',
      )
      .run(seq, error, endpoint);
  }
}
