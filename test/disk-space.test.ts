import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileConfig } from '../lib/config/config';
import { DaemonRuntime } from '../lib/daemon-runtime';
import { openDb } from '../lib/db';
import type { DiskFree } from '../lib/disk-space';
import { EventLogError } from '../lib/errors';
import { readEvents, SqliteEventLog, verifyChain } from '../lib/event-log';
import { appendLine } from '../lib/atomic-file';
import { silentLogger } from '../lib/logger';
import { JsonStateStore } from '../lib/state-store';
import { DiskWatch } from '../lib/watchdog/disk-watch';
import { daemonContext } from './helpers/daemon-context';
import { ManualClock } from './helpers/manual-clock';
import { fillDisk, mountTmpfs, tmpfsUnavailable, unmount } from './helpers/tmpfs';
import { tmpDir } from './helpers/tmp';

// A disk filling up under Swarm, in parts: the watchdog's disk_low episode
// and a daemon's held ticks on injected free space, then the writes
// themselves against a real full tmpfs (root only). The whole swarm on a
// full disk is test/disk-full.test.ts.

const MiB = 1024 * 1024;
const config = (dir: string, extra: Record<string, unknown> = {}) =>
  compileConfig(
    { name: 'd', stateDir: dir, tick: '1s', jobs: { j: { command: ['true'] } }, ...extra },
    path.join(dir, 'c.json'),
    {},
  );

describe('a daemon near a full disk', () => {
  it('holds its ticks below the floor, stays running, and resumes past twice the floor with the time held', async () => {
    const dir = tmpDir();
    const db = openDb(dir);
    const clock = new ManualClock();
    let free = 100 * MiB;
    let ticks = 0;
    const held: number[] = [];
    const rt = new DaemonRuntime(
      {
        name: 'worker-sentry',
        config: config(dir),
        db,
        state: new JsonStateStore(dir),
        clock,
        logger: silentLogger,
        hmacKey: null,
        diskFree: (d): DiskFree => ({ dir: d, freeBytes: free, totalBytes: 200 * MiB }),
      },
      { tick: () => void (ticks += 1), snapshot: () => ({}), afterHold: (_ctx, ms) => void held.push(ms) },
    );
    await rt.start();
    await clock.advance(0);
    expect(ticks).toBe(1);
    free = 1 * MiB;
    await clock.advance(5000);
    expect(ticks).toBe(1);
    expect(rt.state).toBe('running');
    // Just over the floor is not enough to resume: it takes twice the floor.
    free = 5 * MiB;
    await clock.advance(2000);
    expect(ticks).toBe(1);
    free = 50 * MiB;
    await clock.advance(1000);
    expect(ticks).toBe(2);
    // Held from the first tick that found the disk full (t=1s) to the one that found room (t=8s).
    expect(held).toEqual([7000]);
    await rt.stop('test');
    db.close();
  });
});

describe('the watchdog on free space', () => {
  it('detects disk_low and escalates once, withdraws it with room to spare, and finds it again after a restart', () => {
    const dir = tmpDir();
    const cfg = config(dir, { watchdog: { diskMinFree: '100M' } });
    const ctx = daemonContext('watchdog', cfg);
    let free = 500 * MiB;
    const read = (d: string): DiskFree => ({ dir: d, freeBytes: free, totalBytes: 1000 * MiB });
    const watch = new DiskWatch(read);
    const kinds = () => readEvents(ctx.db).map((e) => e.kind);
    watch.check(ctx);
    expect(kinds()).toEqual([]);
    free = 90 * MiB;
    watch.check(ctx);
    watch.check(ctx);
    const raised = readEvents(ctx.db, { kindPrefix: 'escalation.raised' });
    expect(kinds()).toEqual(['detect.disk_low', 'escalation.raised']);
    expect(raised[0]?.target).toBe(`state:disk:${dir}`);
    expect(watch.view()).toEqual([{ dir, freeBytes: 90 * MiB, totalBytes: 1000 * MiB, low: true }]);

    // A restarted watchdog knows the call is open: it does not call again, and withdraws it.
    const again = new DiskWatch(read);
    again.recover(ctx);
    free = 105 * MiB;
    again.check(ctx);
    expect(kinds()).toHaveLength(2);
    free = 111 * MiB;
    again.check(ctx);
    const resolved = readEvents(ctx.db, { kindPrefix: 'escalation.resolved' });
    expect(resolved.map((e) => e.data.escalationId)).toEqual([raised[0]?.seq]);
    ctx.db.close();
  });
});

const noTmpfs = tmpfsUnavailable();

describe.skipIf(noTmpfs !== null)(`writes on a full tmpfs${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`, () => {
  const mnt = fs.mkdtempSync('/tmp/swarm-full-');
  beforeAll(() => {
    const err = mountTmpfs(mnt, '8m');
    if (err) throw new Error(err);
  });
  afterAll(() => {
    unmount(mnt);
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  it('an event append fails whole, is retried, and goes through once there is room; the chain stays intact', () => {
    const db = openDb(mnt);
    const log = new SqliteEventLog(db, { source: 'watchdog', runId: () => 'r-1' });
    log.append({ kind: 'db.checked', target: 'state:swarm.db', data: { n: 0 } });
    const filler = path.join(mnt, 'filler');
    fillDisk(filler, 0);
    const big = { blob: 'x'.repeat(256 * 1024) };
    let err: unknown = null;
    try {
      for (let i = 0; i < 64; i++) log.append({ kind: 'db.checked', target: 'state:swarm.db', data: big });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EventLogError);
    expect((err as EventLogError).diskFull).toBe(true);
    expect((err as Error).message).toMatch(/disk full/);
    const before = log.lastSeq();
    fs.rmSync(filler);
    const e = log.append({ kind: 'db.checked', target: 'state:swarm.db', data: { n: 1 } });
    expect(e.seq).toBe(before + 1);
    expect(verifyChain(db).ok).toBe(true);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });

  it('a line appended on a full disk is all there or not there at all', () => {
    const file = path.join(mnt, 'beats.jsonl');
    appendLine(file, JSON.stringify({ n: 1 }));
    const filler = path.join(mnt, 'filler2');
    fillDisk(filler, 0);
    const size = fs.statSync(file).size;
    expect(() => appendLine(file, JSON.stringify({ blob: 'y'.repeat(64 * 1024) }))).toThrow(/ENOSPC/);
    expect(fs.statSync(file).size).toBe(size);
    fs.rmSync(filler);
    appendLine(file, JSON.stringify({ n: 2 }));
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([{ n: 1 }, { n: 2 }]);
  });
});
