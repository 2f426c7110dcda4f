import { Timings } from './timings';
import type { ChainAnchor, ChainHead } from './chain-anchor';
import { systemClock } from './clock';
import type { Db } from './db';
import { macRow } from './hmac-chain';
import { EventLogError, errorMessage } from './errors';
import type { NewEvent, Severity, StoredEvent } from './event-kinds';
import { GENESIS_HASH, hashRow, parseData, rowToEvent, rowWithData, type Row } from './event-row';
import { eventLineBody, lineOf, Projector, type FreshLine, type Projection } from './projection';
import { noRedaction, type Redactor } from './redact';
import { blockFor, WriteLock } from './write-lock';
import { isDiskFull } from './disk-space';

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
  /** The chain's head kept outside swarm.db (lib/chain-anchor.ts). */
  anchor?: ChainAnchor | null;
  /** The key of the keyed chain (lib/hmac-chain.ts); null: rows get no mac. */
  hmacKey?: Buffer | null;
}

/** Waits between the tries of an append that failed for want of space. */
const DISK_FULL_WAITS_MS = [50, 150, 300];

export class SqliteEventLog implements EventLog {
  private readonly last;
  private readonly insert;
  private readonly maxSeq;
  private readonly now: () => number;
  private readonly lock: WriteLock;
  private readonly projector: Projector | null;
  private redactor: Redactor;

  constructor(
    db: Db,
    private readonly opts: SqliteEventLogOptions,
  ) {
    this.last = db.prepare<[], { seq: number; hash: string; mac: string | null }>(
      'SELECT seq, hash, mac FROM events ORDER BY seq DESC LIMIT 1',
    );
    this.insert = db.prepare(
      'INSERT INTO events (seq, ts, run_id, source, kind, target, severity, action_id, data, hash, mac) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    );
    this.maxSeq = db.prepare<[], { m: number | null }>('SELECT max(seq) AS m FROM events');
    this.now = opts.now ?? (() => systemClock.now());
    this.lock = new WriteLock(db);
    this.projector = opts.projection ? new Projector(db, opts.projection.file, opts.projection.maxBytes) : null;
    this.redactor = opts.redactor ?? noRedaction;
  }

  /** This process's append times, lock wait included (lib/timings.ts). */
  readonly timings = new Timings();

  /** A reloaded config can name new secret values (a new job's env): they are cut out from the next event on. */
  setRedactor(redactor: Redactor): void {
    this.redactor = redactor;
  }

  append(event: NewEvent): StoredEvent {
    return this.appendMany([event])[0] as StoredEvent;
  }

  appendMany(events: NewEvent[]): StoredEvent[] {
    if (events.length === 0) return [];
    const started = process.hrtime.bigint();
    let prepared: Prepared[] | null = null;
    for (let retry = 0; ; retry++) {
      try {
        // Inside the try: data that cannot be serialized (a cycle, a BigInt) is an EventLogError like any other.
        const ready = (prepared ??= events.map((e) => this.prepare(e)));
        const rows = this.lock.run(() => this.appendLocked(ready));
        this.timings.observe(Number(process.hrtime.bigint() - started) / 1e9);
        return rows.map((r, i) => rowWithData(r, (ready[i] as Prepared).parsed));
      } catch (err) {
        // A full disk rolls the transaction back whole; space freed a moment later (a temp file removed) lets
        // the same append through. After that the caller is told, and its tick is tried again later.
        const full = isDiskFull(err);
        if (full && retry < DISK_FULL_WAITS_MS.length) {
          blockFor(DISK_FULL_WAITS_MS[retry] ?? 0);
          continue;
        }
        throw new EventLogError(
          `cannot append ${events.length} event(s) (${events[0]?.kind})${full ? ' (disk full)' : ''}: ${errorMessage(err)}`,
          full,
        );
      }
    }
  }

  /** Releases the projection file's descriptor; the database stays open for its owner. */
  close(): void {
    this.projector?.close();
    this.opts.anchor?.close();
  }

  lastSeq(): number {
    return this.maxSeq.get()?.m ?? 0;
  }

  /**
   * All of an event that does not depend on its place in the log, made
   * before the write lock is taken: six daemons share that lock on two
   * cores, so what it covers bounds the swarm's appends per second.
   */
  private prepare(e: NewEvent): Prepared {
    const data = JSON.stringify(this.redactor.value(e.data ?? {}));
    // What a reader of the row gets back, not the caller's object: undefined fields gone, dates as text.
    const parsed = parseData(data);
    const severity = e.severity ?? 'info';
    const body = eventLineBody({ severity, source: this.opts.source, kind: e.kind, target: e.target, data: parsed });
    return { kind: e.kind, target: e.target, severity, actionId: e.actionId ?? null, data, parsed, body };
  }

  private appendLocked(events: readonly Prepared[]): Row[] {
    const prev = this.last.get();
    // The last committed row: the anchor never names one that a failed commit could take back.
    if (prev) this.opts.anchor?.write(prev);
    let seq = prev?.seq ?? 0;
    let prevHash = prev?.hash ?? GENESIS_HASH;
    let prevMac = prev?.mac ?? null;
    const key = this.opts.hmacKey ?? null;
    // Taken under the lock, so that ts never goes backwards along seq.
    const ts = new Date(this.now()).toISOString();
    const runId = this.opts.runId();
    const rows: Row[] = [];
    const lines: FreshLine[] = [];
    for (const e of events) {
      seq += 1;
      const row = {
        seq,
        ts,
        run_id: runId,
        source: this.opts.source,
        kind: e.kind,
        target: e.target,
        severity: e.severity,
        action_id: e.actionId,
        data: e.data,
      };
      const hash = hashRow(prevHash, row);
      const mac = key ? macRow(key, prevMac, hash) : null;
      this.insert.run(
        row.seq,
        row.ts,
        row.run_id,
        row.source,
        row.kind,
        row.target,
        row.severity,
        row.action_id,
        row.data,
        hash,
        mac,
      );
      prevMac = mac;
      prevHash = hash;
      rows.push({ ...row, hash });
      if (this.projector) lines.push({ seq, line: lineOf(ts, e.body, seq) });
    }
    this.projector?.project(lines);
    return rows;
  }
}

/** An event made ready for the log, all but its seq, ts and hash. */
interface Prepared {
  kind: string;
  target: string;
  severity: Severity;
  actionId: number | null;
  /** Redacted and serialized: what is stored and hashed. */
  data: string;
  parsed: Record<string, unknown>;
  /** Its projection line, less ts and seq. */
  body: string;
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
    where.push("(kind = @kind OR kind LIKE @kindLike ESCAPE '\\')");
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

export type VerifyResult =
  { ok: true; count: number; lastSeq: number } | { ok: false; count: number; badSeq: number; reason: string };

/**
 * Walks the whole chain; the first row whose hash or predecessor does not
 * match is reported. With the head anchor, the log must also still reach
 * the anchored seq with the anchored hash: a log cut short, or rehashed from
 * an edited row onwards, is caught there. The projection mark, in swarm.db,
 * tells the same for a cut made without touching it.
 */
export function verifyChain(db: Db, anchor: ChainHead | null = null, hmacKey: Buffer | null = null): VerifyResult {
  // One read transaction, so the rows and the projection mark are one snapshot: read apart, a swarm that
  // appends in between leaves a mark past the rows read, which looks like a log cut short.
  return db.transaction(() => verifyChainIn(db, anchor, hmacKey))();
}

function verifyChainIn(db: Db, anchor: ChainHead | null, hmacKey: Buffer | null): VerifyResult {
  let prevHash = GENESIS_HASH;
  let prevSeq = 0;
  let count = 0;
  let anchoredHash: string | null = null;
  let prevMac: string | null = null;
  let keyed = false;
  for (const r of db.prepare<[], Row & { mac: string | null }>('SELECT * FROM events ORDER BY seq').iterate()) {
    if (r.seq !== prevSeq + 1)
      return { ok: false, count, badSeq: r.seq, reason: `seq ${r.seq} does not follow ${prevSeq}` };
    const expected = hashRow(prevHash, r);
    if (expected !== r.hash)
      return { ok: false, count, badSeq: r.seq, reason: 'hash does not match the row and its predecessor' };
    if (hmacKey) {
      if (r.mac === null && keyed)
        return {
          ok: false,
          count,
          badSeq: r.seq,
          reason: 'no mac, after rows that have one: appended without the key',
        };
      if (r.mac !== null && r.mac !== macRow(hmacKey, prevMac, r.hash))
        return {
          ok: false,
          count,
          badSeq: r.seq,
          reason: 'mac does not match: the row or the chain before it was rewritten without the key',
        };
      keyed ||= r.mac !== null;
      prevMac = r.mac;
    }
    if (anchor && r.seq === anchor.seq) anchoredHash = r.hash;
    prevHash = r.hash;
    prevSeq = r.seq;
    count += 1;
  }
  const mark =
    db.prepare<[], { last_seq: number }>('SELECT last_seq FROM projection WHERE id = 1').get()?.last_seq ?? 0;
  if (mark > prevSeq)
    return {
      ok: false,
      count,
      badSeq: prevSeq + 1,
      reason: `the log ends at seq ${prevSeq}, but its projection mark says ${mark} were written: rows were cut off its end`,
    };
  if (anchor && anchor.seq > prevSeq) {
    return {
      ok: false,
      count,
      badSeq: prevSeq + 1,
      reason: `the log ends at seq ${prevSeq}, but the head anchor outside swarm.db names seq ${anchor.seq}: rows were cut off its end`,
    };
  }
  if (anchor && anchoredHash !== anchor.hash) {
    return {
      ok: false,
      count,
      badSeq: anchor.seq,
      reason: `seq ${anchor.seq} no longer has the hash the head anchor recorded: the chain was rewritten up to it`,
    };
  }
  return { ok: true, count, lastSeq: prevSeq };
}
