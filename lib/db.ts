import path from 'node:path';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { ensureDir, STATE_FILE_MODE } from './atomic-file';
import { UnsafeFileError } from './errors';

// One SQLite file per swarm, shared by every daemon and swarmctl. WAL lets
// readers (query) run beside writers; the busy timeout lets six writers queue
// for the write lock instead of failing.

export type Db = Database.Database;

export const DB_FILE = 'swarm.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  run_id TEXT NOT NULL,
  source TEXT NOT NULL,
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  severity TEXT NOT NULL,
  action_id INTEGER,
  data TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_target ON events(target, seq);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END;
-- INSERT OR REPLACE deletes the row it replaces without firing the DELETE trigger:
-- an insert must be the next seq, so it can never land on a row that exists.
CREATE TRIGGER IF NOT EXISTS events_insert_next BEFORE INSERT ON events
  WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM events)
  BEGIN SELECT RAISE(ABORT, 'events is append-only: an insert must be the next seq'); END;
CREATE TABLE IF NOT EXISTS projection (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  last_seq INTEGER NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  started_at TEXT NOT NULL,
  completed_at TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
  run_id TEXT NOT NULL,
  id TEXT NOT NULL,
  job TEXT NOT NULL,
  args TEXT NOT NULL,
  lane TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  queued_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (run_id, id)
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks(run_id, status, lane);
CREATE TABLE IF NOT EXISTS leases (
  target TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  action_id INTEGER,
  acquired_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS proposals (
  action_id INTEGER PRIMARY KEY,
  actor TEXT NOT NULL,
  type TEXT NOT NULL,
  target TEXT NOT NULL,
  priority TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL,
  granted_by TEXT,
  reason TEXT,
  decided_at INTEGER
);
CREATE INDEX IF NOT EXISTS proposals_pending ON proposals(status, created_at);
CREATE TABLE IF NOT EXISTS samples (
  ts INTEGER NOT NULL,
  series TEXT NOT NULL,
  value REAL
);
CREATE INDEX IF NOT EXISTS samples_series ON samples(series, ts);
CREATE INDEX IF NOT EXISTS samples_ts ON samples(ts);
CREATE TABLE IF NOT EXISTS control (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
-- Per notify endpoint: every event up to seq is delivered, given up on, or not for it (lib/notify/cursors.ts).
CREATE TABLE IF NOT EXISTS notify_cursors (
  endpoint TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  failures INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER,
  last_error TEXT,
  delivered INTEGER NOT NULL DEFAULT 0,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  given_up INTEGER NOT NULL DEFAULT 0
);
`;

/**
 * 1 KiB pages, not SQLite's 4 KiB. A commit writes every page it dirtied to
 * the WAL whole, and a checkpoint flushes all of that to disk: an event is a
 * row of ~250 bytes, but it dirties four pages (the table's last leaf, a
 * leaf of each index, the projection mark). With 1 KiB pages one event
 * writes 4 KiB, not 16 KiB, and a single writer appended ~30 % more events
 * per second (docs/PERFORMANCE.md).
 */
export const PAGE_BYTES = 1024;

/** Where a connection checkpoints the WAL itself: the backstop behind the watchdog's checkpoints. */
export const AUTOCHECKPOINT_PAGES = 16_000;

export interface OpenDbOptions {
  readonly?: boolean;
  busyTimeoutMs?: number;
}

/** Columns added after the first release, so a swarm.db made before them gets them on open. */
const ADDED_COLUMNS = [
  // Which file (by inode) the projection mark counts the bytes of.
  { table: 'projection', column: 'ino', type: 'INTEGER' },
  // The keyed chain (lib/hmac-chain.ts), null where no key was configured.
  { table: 'events', column: 'mac', type: 'TEXT' },
  // Leases run on the swarm's clock (lib/clock.ts); the wall clock at acquisition is kept beside, for a person.
  { table: 'leases', column: 'acquired_wall', type: 'TEXT' },
  // The queue's order and dependencies (`priority`, `after`): higher first, then FIFO; `deps` a JSON array of task ids.
  { table: 'tasks', column: 'priority', type: 'INTEGER NOT NULL DEFAULT 0' },
  { table: 'tasks', column: 'deps', type: "TEXT NOT NULL DEFAULT '[]'" },
] as const;

/** Indexes on added columns: made once the columns are there. */
const ADDED_INDEXES =
  // The queue in the order it starts: the next task of a lane is read off the index, however long the queue.
  'CREATE INDEX IF NOT EXISTS tasks_queue ON tasks(run_id, lane, status, priority DESC);';

function refuseLink(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    // Not there yet: SQLite makes it.
    return;
  }
  if (!st.isFile()) throw new UnsafeFileError(file, st.isSymbolicLink() ? 'a symlink' : 'not a regular file');
}

export function openDb(stateDir: string, opts: OpenDbOptions = {}): Db {
  const file = path.join(stateDir, DB_FILE);
  if (opts.readonly) {
    const db = new Database(file, { readonly: true, fileMustExist: true, timeout: opts.busyTimeoutMs ?? 5000 });
    return db;
  }
  ensureDir(stateDir);
  // SQLite follows a symlink; a swarm.db planted as one would put the history somewhere else.
  refuseLink(file);
  const db = new Database(file, { timeout: opts.busyTimeoutMs ?? 10_000 });
  // Tightened on every open, not only on creation: a swarm.db made 0644 by hand or by an older copy is the
  // whole history, secrets redacted or not.
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (fs.existsSync(f)) fs.chmodSync(f, STATE_FILE_MODE);
  // Set before anything is written, so it only takes on a new file: an existing swarm.db keeps its size.
  db.pragma(`page_size = ${PAGE_BYTES}`);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives any process crash; only power loss can drop
  // the last commits. See docs/RELIABILITY.md.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // The watchdog checkpoints the WAL every ~1,000 events, off the appends
  // (lib/watchdog/wal-checkpointer.ts). A connection's own checkpoint, run
  // inside the commit that crosses this many pages (16 MiB of 1 KiB pages),
  // is the backstop for while the watchdog is down. The watchdog also
  // truncates a WAL that grows past watchdog.walCheckpointBytes.
  db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
  // 512 KiB of page cache, not SQLite's 2 MiB: in a swarm every daemon writes each tick, and a
  // connection drops its cache whenever another one has written, so a large one held memory in
  // each of seven daemons (idle RSS is a target, docs/PERFORMANCE.md) and saved few reads.
  db.pragma('cache_size = -512');
  db.transaction(() => {
    db.exec(SCHEMA);
    for (const c of ADDED_COLUMNS) {
      const has = db
        .prepare<[], { name: string }>(`PRAGMA table_info(${c.table})`)
        .all()
        .some((x) => x.name === c.column);
      if (!has) db.exec(`ALTER TABLE ${c.table} ADD COLUMN ${c.column} ${c.type}`);
    }
    db.exec(ADDED_INDEXES);
  }).immediate();
  return db;
}
