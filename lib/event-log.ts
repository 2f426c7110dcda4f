import type { Db } from './db';
import { EventLogError, errorMessage } from './errors';
import type { NewEvent, StoredEvent } from './event-kinds';
import { GENESIS_HASH, hashRow, rowToEvent, type Row } from './event-row';
import { Projector, type Projection } from './projection';
import { noRedaction, type Redactor } from './redact';
import { WriteLock } from './write-lock';

// The append-only event log. Every append takes SQLite's write lock
// (BEGIN IMMEDIATE), reads the last hash, inserts, and extends the
// workflow_events.log projection, all under that one lock: that is what keeps
// the hash chain unbroken and the projection gap-free with many writers.

/** What daemons depend on: append and read, nothing about SQLite. */
export interface EventLog {
  append(event: NewEvent): StoredEvent;
  appendMany(events: NewEvent[]): StoredEvent[];
  lastSeq(): number;
}

export interface SqliteEventLogOptions {
  source: string;
  runId: () => string;
  now?: () => number;
  projection?: Projection | null;
  /** Applied to every event's data before it is hashed and stored: no secret value reaches the log. */
  redactor?: Redactor;
}

export class SqliteEventLog implements EventLog {
  private readonly last;
  private readonly insert;
  private readonly maxSeq;
  private readonly now: () => number;
  private readonly lock: WriteLock;
  private readonly projector: Projector | null;
  private readonly redactor: Redactor;

  constructor(
    db: Db,
    private readonly opts: SqliteEventLogOptions,
  ) {
    this.last = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1');
    this.insert = db.prepare(
      'INSERT INTO events (seq, ts, run_id, source, kind, target, severity, action_id, data, hash) VALUES (?,?,?,?,?,?,?,?,?,?)',
    );
    this.maxSeq = db.prepare<[], { m: number | null }>('SELECT max(seq) AS m FROM events');
    this.now = opts.now ?? Date.now;
    this.lock = new WriteLock(db);
    this.projector = opts.projection ? new Projector(db, opts.projection.file) : null;
    this.redactor = opts.redactor ?? noRedaction;
  }

  append(event: NewEvent): StoredEvent {
    return this.appendMany([event])[0] as StoredEvent;
  }

  appendMany(events: NewEvent[]): StoredEvent[] {
    if (events.length === 0) return [];
    try {
      return this.lock.run(() => this.appendLocked(events));
    } catch (err) {
      throw new EventLogError(`cannot append ${events.length} event(s) (${events[0]?.kind}): ${errorMessage(err)}`);
    }
  }

  /** Releases the projection file's descriptor; the database stays open for its owner. */
  close(): void {
    this.projector?.close();
  }

  lastSeq(): number {
    return this.maxSeq.get()?.m ?? 0;
  }

  private appendLocked(events: NewEvent[]): StoredEvent[] {
    const prev = this.last.get();
    let seq = prev?.seq ?? 0;
    let prevHash = prev?.hash ?? GENESIS_HASH;
    const ts = new Date(this.now()).toISOString();
    const runId = this.opts.runId();
    const out: StoredEvent[] = [];
    const rows: Row[] = [];
    for (const e of events) {
      seq += 1;
      const row = {
        seq, ts, run_id: runId, source: this.opts.source, kind: e.kind, target: e.target,
        severity: e.severity ?? 'info', action_id: e.actionId ?? null, data: JSON.stringify(this.redactor.value(e.data ?? {})),
      };
      const hash = hashRow(prevHash, row);
      this.insert.run(row.seq, row.ts, row.run_id, row.source, row.kind, row.target, row.severity, row.action_id, row.data, hash);
      const stored = { ...row, hash };
      rows.push(stored);
      out.push(rowToEvent(stored));
      prevHash = hash;
    }
    this.projector?.project(rows);
    return out;
  }
}

export interface EventFilter {
  sinceSeq?: number;
  kindPrefix?: string;
  target?: string;
  limit?: number;
}

/** Oldest first, after sinceSeq. */
export function readEvents(db: Db, f: EventFilter = {}): StoredEvent[] {
  const where: string[] = ['seq > @since'];
  const params: Record<string, unknown> = { since: f.sinceSeq ?? 0, limit: f.limit ?? -1 };
  if (f.kindPrefix) {
    where.push('(kind = @kind OR kind LIKE @kindLike ESCAPE \'\\\')');
    params.kind = f.kindPrefix;
    params.kindLike = `${f.kindPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}${f.kindPrefix.endsWith('.') ? '' : '.'}%`;
  }
  if (f.target) {
    where.push('target = @target');
    params.target = f.target;
  }
  const sql = `SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT @limit`;
  return db.prepare<Record<string, unknown>, Row>(sql).all(params).map(rowToEvent);
}

export type VerifyResult = { ok: true; count: number; lastSeq: number } | { ok: false; count: number; badSeq: number; reason: string };

/** Walks the whole chain; the first row whose hash or predecessor does not match is reported. */
export function verifyChain(db: Db): VerifyResult {
  let prevHash = GENESIS_HASH;
  let prevSeq = 0;
  let count = 0;
  for (const r of db.prepare<[], Row>('SELECT * FROM events ORDER BY seq').iterate()) {
    if (r.seq <= prevSeq) return { ok: false, count, badSeq: r.seq, reason: 'seq is not increasing' };
    const expected = hashRow(prevHash, r);
    if (expected !== r.hash) return { ok: false, count, badSeq: r.seq, reason: 'hash does not match the row and its predecessor' };
    prevHash = r.hash;
    prevSeq = r.seq;
    count += 1;
  }
  return { ok: true, count, lastSeq: prevSeq };
}
