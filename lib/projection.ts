import { openAppend } from './safe-file';
import fs from 'node:fs';
import type { Db } from './db';
import type { StoredEvent } from './event-kinds';
import { rowToEvent, type Row } from './event-row';
import { STATE_FILE_MODE } from './atomic-file';

// workflow_events.log is a projection of the events table, for `tail -f`.
// It is only ever extended while holding SQLite's write lock, and the
// projection row records how many bytes of which file (by inode) are
// committed: a writer that died between writing lines and committing left
// bytes past that mark, and the next projector cuts them off before
// appending.
//
// The file is a log like any other: past `maxBytes` it is renamed to
// workflow_events.log.1 and a new one is started, and a file moved away
// (logrotate), removed or cut short by a person is simply continued from
// the next event. History is never replayed into it: on a long run that
// was the whole log, rewritten under the write lock. Every event stays in
// swarm.db (`swarmctl events`).

export const PROJECTION_FILE = 'workflow_events.log';

export interface Projection {
  file: string;
  /** Past this, the file is rotated to FILE.1 (one old generation is kept). */
  maxBytes?: number;
}

export const DEFAULT_PROJECTION_MAX_BYTES = 64 * 1024 * 1024;

export function formatEventLine(
  e: Pick<StoredEvent, 'ts' | 'severity' | 'source' | 'kind' | 'target' | 'data' | 'seq'>,
): string {
  return lineOf(e.ts, eventLineBody(e), e.seq);
}

/**
 * The part of an event's line that does not depend on its place in the log:
 * the event log makes it before taking the write lock, so that the lock is
 * held for as little as it can be.
 */
export function eventLineBody(e: Pick<StoredEvent, 'severity' | 'source' | 'kind' | 'target' | 'data'>): string {
  const message = typeof e.data.message === 'string' ? e.data.message : summarize(e.data);
  const clean = message.replace(/[\r\n]+/g, ' ⏎ ');
  return `${e.severity.toUpperCase().padEnd(5)} ${e.source}  ${e.kind}  ${e.target}  ${clean}`;
}

export function lineOf(ts: string, body: string, seq: number): string {
  return `${ts} ${body}  seq=${seq}\n`;
}

/** A row this transaction appended, with its line already made. */
export interface FreshLine {
  seq: number;
  line: string;
}

function summarize(data: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(data)) {
    if (v === null || v === undefined || typeof v === 'object') continue;
    parts.push(`${k}=${String(v)}`);
    if (parts.length >= 6) break;
  }
  return parts.join(' ');
}

const CHUNK_BYTES = 1 << 20;
const PATH_CHECK_MS = 250;

/**
 * Extends the file for one process. It keeps its statements prepared and the
 * file open between appends, because an append is on the hot path of every
 * daemon; the path is still checked each time, so a file a person removed or
 * replaced is noticed and rebuilt.
 */
export class Projector {
  private fd: number | null = null;
  private ino = -1;
  private pathCheckedAt = -Infinity;
  private readonly cursor;
  private readonly rowsAfter;
  private readonly save;

  constructor(
    db: Db,
    readonly file: string,
    private readonly maxBytes = DEFAULT_PROJECTION_MAX_BYTES,
  ) {
    this.cursor = db.prepare<[], { last_seq: number; bytes: number; ino: number | null }>(
      'SELECT last_seq, bytes, ino FROM projection WHERE id = 1',
    );
    this.rowsAfter = db.prepare<[number], Row>('SELECT * FROM events WHERE seq > ? ORDER BY seq');
    this.save = db.prepare(
      'INSERT INTO projection (id, last_seq, bytes, ino) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET last_seq = excluded.last_seq, bytes = excluded.bytes, ino = excluded.ino',
    );
  }

  /**
   * Must run inside an IMMEDIATE transaction. `fresh` are the lines of the
   * rows this transaction appended, in order: when nothing older is missing
   * from the file, they are written without reading the rows back.
   */
  project(fresh: readonly FreshLine[] = []): void {
    const cursor = this.cursor.get() ?? { last_seq: 0, bytes: 0, ino: null };
    if (cursor.ino !== null && cursor.bytes >= this.maxBytes) this.rotate();
    const { fd, size, ino } = this.open(cursor.ino);
    const from = cursor.last_seq;
    let bytes = cursor.bytes;
    if (ino !== cursor.ino || size < bytes) {
      // Another file at the path (rotated, removed, first run) or this one cut short: go on after what it
      // holds. No replay: the earlier events are in the old file, and all of them in swarm.db.
      bytes = size;
    } else if (size > bytes) {
      // Lines of a writer that died before its commit: they were never events.
      fs.ftruncateSync(fd, bytes);
    }
    let lastSeq = from;
    let chunk = '';
    const lines: Iterable<FreshLine> = fresh.length > 0 && fresh[0]?.seq === from + 1 ? fresh : this.linesAfter(from);
    for (const l of lines) {
      chunk += l.line;
      lastSeq = l.seq;
      if (chunk.length > CHUNK_BYTES) {
        bytes += fs.writeSync(fd, chunk);
        chunk = '';
      }
    }
    if (chunk) bytes += fs.writeSync(fd, chunk);
    if (lastSeq !== cursor.last_seq || bytes !== cursor.bytes || ino !== cursor.ino) this.save.run(lastSeq, bytes, ino);
  }

  /** The committed rows the file does not hold yet: those of a writer that projected nothing (projectNow). */
  private *linesAfter(seq: number): Generator<FreshLine> {
    for (const r of this.rowsAfter.iterate(seq)) yield { seq: r.seq, line: formatEventLine(rowToEvent(r)) };
  }

  /** Under the write lock: the full file becomes FILE.1 (replacing the older one), and the next open starts a new one. */
  private rotate(): void {
    try {
      fs.renameSync(this.file, `${this.file}.1`);
    } catch (err) {
      // Already moved away by someone else: the open below starts the new file all the same.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.pathCheckedAt = -Infinity;
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.ino = -1;
  }

  /**
   * The open descriptor, reopened when the path no longer names the file it
   * points at. A removed or replaced file shows at once as a link count of 0;
   * a file moved away (log rotation) keeps its link, so the path itself is
   * looked up at most every PATH_CHECK_MS, and at once when the projection
   * mark names another file (another process rotated it). Lines written to a
   * moved file in between are not lost: they are in the moved file.
   */
  private open(expectedIno: number | null): { fd: number; size: number; ino: number } {
    const now = performance.now();
    if (this.fd !== null && this.ino === expectedIno && now - this.pathCheckedAt < PATH_CHECK_MS) {
      const st = fs.fstatSync(this.fd);
      if (st.nlink > 0) return { fd: this.fd, size: st.size, ino: st.ino };
    }
    this.pathCheckedAt = now;
    let ino = -1;
    try {
      ino = fs.lstatSync(this.file).ino;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (this.fd === null || ino !== this.ino) {
      this.close();
      // Never through a link planted in its place, never blocking on a FIFO: refused instead.
      this.fd = openAppend(this.file, STATE_FILE_MODE);
    }
    const st = fs.fstatSync(this.fd);
    this.ino = st.ino;
    return { fd: this.fd, size: st.size, ino: st.ino };
  }
}

/** Brings the file up to date on its own, for a process that appended nothing. */
export function projectNow(db: Db, p: Projection): void {
  const projector = new Projector(db, p.file, p.maxBytes);
  try {
    db.transaction(() => projector.project()).immediate();
  } finally {
    projector.close();
  }
}
