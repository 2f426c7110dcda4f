import fs from 'node:fs';
import type { Db } from './db';
import type { StoredEvent } from './event-kinds';
import { rowToEvent, type Row } from './event-row';
import { STATE_FILE_MODE } from './atomic-file';

// workflow_events.log is a projection of the events table, for `tail -f`.
// It is only ever extended while holding SQLite's write lock, and the
// projection row records how many bytes of the file are committed: a writer
// that died between writing lines and committing left bytes past that mark,
// and the next projector cuts them off before appending. A file that is
// shorter than the mark was truncated or removed by a person, and is rebuilt.

export const PROJECTION_FILE = 'workflow_events.log';

export interface Projection {
  file: string;
}

export function formatEventLine(e: Pick<StoredEvent, 'ts' | 'severity' | 'source' | 'kind' | 'target' | 'data' | 'seq'>): string {
  const message = typeof e.data.message === 'string' ? e.data.message : summarize(e.data);
  const clean = message.replace(/[\r\n]+/g, ' ⏎ ');
  return `${e.ts} ${e.severity.toUpperCase().padEnd(5)} ${e.source}  ${e.kind}  ${e.target}  ${clean}  seq=${e.seq}\n`;
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

/** Must run inside an IMMEDIATE transaction. */
export function projectLocked(db: Db, p: Projection): void {
  const cursor = db.prepare<[], { last_seq: number; bytes: number }>('SELECT last_seq, bytes FROM projection WHERE id = 1').get() ?? { last_seq: 0, bytes: 0 };
  let size: number;
  try {
    size = fs.statSync(p.file).size;
  } catch {
    size = -1;
  }
  let from = cursor.last_seq;
  let bytes = cursor.bytes;
  if (size < bytes) {
    // Removed or truncated by hand: rebuild it whole, so it is again every event once.
    fs.writeFileSync(p.file, '', { mode: STATE_FILE_MODE });
    from = 0;
    bytes = 0;
  } else if (size > bytes) {
    fs.truncateSync(p.file, bytes);
  }
  const rows = db.prepare<[number], Row>('SELECT * FROM events WHERE seq > ? ORDER BY seq');
  let lastSeq = from;
  const fd = fs.openSync(p.file, 'a', STATE_FILE_MODE);
  try {
    let chunk = '';
    for (const r of rows.iterate(from)) {
      chunk += formatEventLine(rowToEvent(r));
      lastSeq = r.seq;
      if (chunk.length > 1 << 20) {
        bytes += fs.writeSync(fd, chunk);
        chunk = '';
      }
    }
    if (chunk) bytes += fs.writeSync(fd, chunk);
  } finally {
    fs.closeSync(fd);
  }
  if (lastSeq !== cursor.last_seq || bytes !== cursor.bytes) {
    db.prepare('INSERT INTO projection (id, last_seq, bytes) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET last_seq = excluded.last_seq, bytes = excluded.bytes').run(lastSeq, bytes);
  }
}

/** Brings the file up to date on its own, for a process that appended nothing. */
export function projectNow(db: Db, p: Projection): void {
  db.transaction(() => projectLocked(db, p)).immediate();
}
