import fs from 'node:fs';
import type { Clock, TimerHandle } from '../clock';
import { DB_FILE, type Db } from '../db';
import { errorMessage } from '../errors';
import type { EventLog } from '../event-log';
import type { Logger } from '../logger';

// The WAL's checkpoints, taken by the watchdog off the event log's appends.
// Left to SQLite, a checkpoint runs inside whichever daemon's commit crosses
// the threshold: it copies the WAL into swarm.db and fsyncs both (~5 ms for
// 4 MiB here), and meanwhile that daemon appends nothing while the others,
// backing off from the write lock, find it free only when they next wake.
// Taken here, every ~1,000 events, the swarm's appends ran ~12 % faster
// (docs/PERFORMANCE.md). Each connection's own autocheckpoint stays, at a
// higher threshold (lib/db.ts), for while the watchdog is down.
//
// A checkpoint reuses the WAL file but never shrinks it; one that grew large
// (a long reader held its frames) is cut back on the watchdog's tick
// (truncateIfOver), and that is recorded.

export interface WalCheckpointerOptions {
  /** How often the log's head is looked at while events come fast: one indexed read. */
  everyMs: number;
  /** How often while they do not (fewer than a tenth of afterEvents since the last look): an idle swarm wakes the watchdog once a second for this, not ten times. */
  idleEveryMs: number;
  /** A checkpoint once this many events were appended since the last: each writes ~4 KiB of WAL. */
  afterEvents: number;
  /** After a checkpoint failed (a full disk), the next try waits this long: one warning, not ten a second. */
  retryAfterMs: number;
}

export const WAL_CHECKPOINTER_DEFAULTS: WalCheckpointerOptions = {
  everyMs: 100,
  idleEveryMs: 1000,
  afterEvents: 1000,
  retryAfterMs: 5000,
};

export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

export class WalCheckpointer {
  private timer: TimerHandle | null = null;
  private lastSeq: number;
  /** The head at the previous look: how fast events come decides when the next look is. */
  private seenSeq: number;
  private retryAt = -Infinity;
  private fast = false;
  private readonly head;
  private readonly checkpoint;
  private readonly truncate;
  private readonly walFile: string;

  constructor(
    db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly opts: WalCheckpointerOptions = WAL_CHECKPOINTER_DEFAULTS,
  ) {
    this.head = db.prepare<[], { m: number | null }>('SELECT max(seq) AS m FROM events');
    this.checkpoint = db.prepare<[], CheckpointResult>('PRAGMA wal_checkpoint(PASSIVE)');
    this.truncate = db.prepare<[], CheckpointResult>('PRAGMA wal_checkpoint(TRUNCATE)');
    this.walFile = `${db.name}-wal`;
    this.lastSeq = this.readHead();
    this.seenSeq = this.lastSeq;
  }

  start(): void {
    if (this.timer) return;
    this.arm();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** The checkpoint's result when one ran, null when too few events came since the last. */
  runOnce(): CheckpointResult | null {
    if (this.clock.now() < this.retryAt) return null;
    try {
      const seq = this.readHead();
      this.fast = seq - this.seenSeq >= this.opts.afterEvents / 10;
      this.seenSeq = seq;
      if (seq - this.lastSeq < this.opts.afterEvents) return null;
      // PASSIVE: never waits for a reader or a writer; what it cannot copy now, the next one does.
      const r = this.checkpoint.get() ?? null;
      this.lastSeq = seq;
      this.logger.debug({ seq, result: r }, 'wal checkpointed');
      return r;
    } catch (err) {
      // A full disk or an I/O error: tried again later, and the connections' own checkpoints stand behind.
      this.retryAt = this.clock.now() + this.opts.retryAfterMs;
      this.logger.warn({ err: errorMessage(err), retryAfterMs: this.opts.retryAfterMs }, 'wal checkpoint failed');
      return null;
    }
  }

  /**
   * The WAL's size; past `maxBytes` it is checkpointed and cut back to
   * nothing (TRUNCATE), which waits out readers up to the busy timeout, and
   * `db.checked` records it.
   */
  truncateIfOver(log: EventLog, maxBytes: number): number {
    let walBytes = 0;
    try {
      walBytes = fs.statSync(this.walFile).size;
    } catch (err) {
      // No WAL file between a TRUNCATE and the next write is the normal case; anything else is worth a line.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.logger.warn({ file: this.walFile, err: errorMessage(err) }, 'wal size unreadable');
      return 0;
    }
    if (walBytes < maxBytes) return walBytes;
    const result = this.truncate.get() ?? null;
    this.lastSeq = this.readHead();
    log.append({
      kind: 'db.checked',
      target: `state:${DB_FILE}`,
      data: {
        check: 'wal_checkpoint',
        walBytes,
        result,
        message: `WAL was ${Math.round(walBytes / 1048576)}MiB: checkpointed`,
      },
    });
    return walBytes;
  }

  private readHead(): number {
    return this.head.get()?.m ?? 0;
  }

  private arm(): void {
    this.timer = this.clock.setTimeout(
      () => {
        this.runOnce();
        if (this.timer) this.arm();
      },
      this.fast ? this.opts.everyMs : this.opts.idleEveryMs,
    );
  }
}
