import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AUTOCHECKPOINT_PAGES, DB_FILE, openDb, type Db } from '../lib/db';
import { readEvents, SqliteEventLog } from '../lib/event-log';
import { silentLogger } from '../lib/logger';
import type { Grantor } from '../lib/actions/action';
import { compileConfig } from '../lib/config/config';
import { Watchdog } from '../lib/watchdog/watchdog';
import {
  WAL_CHECKPOINTER_DEFAULTS,
  WalCheckpointer,
  type WalCheckpointerOptions,
} from '../lib/watchdog/wal-checkpointer';
import { daemonContext } from './helpers/daemon-context';
import { NullProcessManager } from './helpers/null-pm';
import { ManualClock } from './helpers/manual-clock';
import { tmpDir } from './helpers/tmp';

// The watchdog takes the WAL's checkpoints, so that no daemon's append waits
// on one; the connections' own checkpoints only stand behind it.

function append(db: Db, n: number): void {
  const log = new SqliteEventLog(db, { source: 'worker-sentry', runId: () => 'r-1', projection: null });
  for (let i = 0; i < n; i++) log.append({ kind: 'worker.launched', target: 'worker:w', data: { n: i } });
}

/** Every 100 ms while events come fast, every second while not, a checkpoint after `afterEvents`. */
const looks = (afterEvents: number): WalCheckpointerOptions => ({
  everyMs: 100,
  idleEveryMs: 1000,
  afterEvents,
  retryAfterMs: 5000,
});

/** A new swarm.db whose schema is already in its main file. */
function freshDb(dir: string): Db {
  const db = openDb(dir);
  db.pragma('wal_checkpoint(TRUNCATE)');
  return db;
}

/** Events in swarm.db's main file alone, without its WAL: what a checkpoint has copied there. */
function eventsInMainFile(dir: string): number {
  const copy = tmpDir();
  fs.copyFileSync(path.join(dir, DB_FILE), path.join(copy, DB_FILE));
  const db = new Database(path.join(copy, DB_FILE), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('WalCheckpointer', () => {
  it('a connection checkpoints on its own only past the backstop', () => {
    const db = openDb(tmpDir());
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(AUTOCHECKPOINT_PAGES);
    db.close();
  });

  it('checkpoints once enough events came since the last, and copies them into the main file', () => {
    const dir = tmpDir();
    const db = freshDb(dir);
    const writer = openDb(dir);
    const c = new WalCheckpointer(db, new ManualClock(), silentLogger, looks(50));
    append(writer, 49);
    expect(c.runOnce()).toBeNull();
    expect(eventsInMainFile(dir)).toBe(0);
    append(writer, 1);
    const r = c.runOnce();
    expect(r).toMatchObject({ busy: 0 });
    expect(r?.log).toBeGreaterThan(0);
    expect(r?.checkpointed).toBe(r?.log);
    expect(eventsInMainFile(dir)).toBe(50);
    // Counted from that checkpoint on.
    append(writer, 49);
    expect(c.runOnce()).toBeNull();
    writer.close();
    db.close();
  });

  it('looks every idleEveryMs, every everyMs while events come fast, and stop() ends it', async () => {
    const dir = tmpDir();
    const db = freshDb(dir);
    const clock = new ManualClock();
    const c = new WalCheckpointer(db, clock, silentLogger, looks(10));
    c.start();
    append(db, 10);
    await clock.advance(999);
    expect(eventsInMainFile(dir)).toBe(0);
    await clock.advance(1);
    expect(eventsInMainFile(dir)).toBe(10);
    // Events came fast: the next look is everyMs later.
    append(db, 10);
    await clock.advance(100);
    expect(eventsInMainFile(dir)).toBe(20);
    // A look that finds none goes back to idleEveryMs: the next is a second after it.
    await clock.advance(100);
    append(db, 10);
    await clock.advance(200);
    expect(eventsInMainFile(dir)).toBe(20);
    await clock.advance(799);
    expect(eventsInMainFile(dir)).toBe(20);
    await clock.advance(1);
    expect(eventsInMainFile(dir)).toBe(30);
    c.stop();
    append(db, 10);
    await clock.advance(5000);
    expect(eventsInMainFile(dir)).toBe(30);
    db.close();
  });

  it('a WAL past maxBytes is checkpointed, cut back to nothing, and db.checked records it', () => {
    const dir = tmpDir();
    const db = freshDb(dir);
    const log = new SqliteEventLog(db, { source: 'watchdog', runId: () => 'r-1', projection: null });
    const c = new WalCheckpointer(db, new ManualClock(), silentLogger, looks(1_000_000));
    append(db, 200);
    const wal = path.join(dir, `${DB_FILE}-wal`);
    const grown = fs.statSync(wal).size;
    expect(c.truncateIfOver(log, grown + 1)).toBe(grown);
    expect(readEvents(db, { kindPrefix: 'db.checked' })).toHaveLength(0);
    expect(c.truncateIfOver(log, grown)).toBe(grown);
    const [checked] = readEvents(db, { kindPrefix: 'db.checked' });
    expect(checked?.data).toMatchObject({ check: 'wal_checkpoint', walBytes: grown, result: { busy: 0 } });
    expect(eventsInMainFile(dir)).toBe(200);
    // Only the db.checked row itself is in the WAL now.
    expect(fs.statSync(wal).size).toBeLessThan(grown / 10);
    db.close();
  });

  it('a checkpoint that fails is logged with its context and tried again later, never thrown', async () => {
    const dir = tmpDir();
    const db = openDb(dir);
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) });
    const clock = new ManualClock();
    const c = new WalCheckpointer(db, clock, logger, looks(1));
    append(db, 1);
    db.close();
    const warnings = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 40);
    expect(c.runOnce()).toBeNull();
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ msg: 'wal checkpoint failed', retryAfterMs: 5000 });
    expect(String(warnings()[0]?.err)).toMatch(/not open/);
    // Not every look: the next try comes after retryAfterMs.
    c.start();
    await clock.advance(4900);
    expect(warnings()).toHaveLength(1);
    await clock.advance(200);
    expect(warnings()).toHaveLength(2);
    c.stop();
  });
});

describe('the watchdog takes the checkpoints', () => {
  it('from start() on the daemon clock, until stop()', async () => {
    const dir = tmpDir('swarm-wal-');
    const config = compileConfig(
      { name: 'wal', stateDir: path.join(dir, 'state'), tick: '1s', jobs: {} },
      path.join(dir, 'swarm.config.json'),
      {},
    );
    fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(config.file, '{}');
    const ctx = daemonContext('watchdog', config);
    ctx.db.pragma('wal_checkpoint(TRUNCATE)');
    const grantor = (): Grantor => ({
      decide: async () => ({ granted: true, grantedBy: 'local' }),
      release: () => undefined,
    });
    const watchdog = new Watchdog(new NullProcessManager(), grantor, () => ['watchdog']);
    watchdog.start(ctx);
    const before = eventsInMainFile(config.stateDir);
    append(ctx.db, WAL_CHECKPOINTER_DEFAULTS.afterEvents);
    await ctx.clock.advance(WAL_CHECKPOINTER_DEFAULTS.idleEveryMs);
    expect(eventsInMainFile(config.stateDir)).toBe(before + WAL_CHECKPOINTER_DEFAULTS.afterEvents);
    await watchdog.stop();
    append(ctx.db, WAL_CHECKPOINTER_DEFAULTS.afterEvents);
    await ctx.clock.advance(10 * WAL_CHECKPOINTER_DEFAULTS.idleEveryMs);
    expect(eventsInMainFile(config.stateDir)).toBe(before + WAL_CHECKPOINTER_DEFAULTS.afterEvents);
    ctx.db.close();
  });
});
