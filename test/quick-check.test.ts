import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDb } from '../lib/db';
import { SqliteEventLog } from '../lib/event-log';
import { QuickCheckRunner, type QuickCheckOutcome } from '../lib/watchdog/quick-check';
import { tmpDir, waitFor } from './helpers/tmp';

// The watchdog's quick_check runs in a process of its own, beside its ticks:
// a verdict on a real database, good or damaged, and a check that can be
// ended at once.

function dbWithEvents(n: number): string {
  const dir = tmpDir();
  const db = openDb(dir);
  const log = new SqliteEventLog(db, { source: 'watchdog', runId: () => 'r-1' });
  log.appendMany(
    Array.from({ length: n }, (_, i) => ({
      kind: 'db.checked' as const,
      target: 'state:swarm.db' as const,
      data: { i, pad: 'x'.repeat(200) },
    })),
  );
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return path.join(dir, 'swarm.db');
}

async function check(file: string): Promise<QuickCheckOutcome> {
  let out: QuickCheckOutcome | null = null;
  const runner = new QuickCheckRunner();
  expect(runner.start(file, 60_000, (o) => (out = o))).toBe(true);
  expect(runner.running).toBe(true);
  // One at a time.
  expect(runner.start(file, 60_000, () => undefined)).toBe(false);
  return waitFor('the verdict', () => out, 30_000);
}

describe('quick_check off the tick', () => {
  it('says ok for a sound database', async () => {
    expect(await check(dbWithEvents(500))).toMatchObject({ result: 'ok' });
  });

  it('names the damage in a database whose pages were overwritten', async () => {
    const file = dbWithEvents(2000);
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r+');
    // Past the schema page: garbage over pages of the events table and its indexes.
    fs.writeSync(fd, Buffer.alloc(16 * 4096, 0xa5), 0, 16 * 4096, Math.floor(size / 2 / 4096) * 4096);
    fs.closeSync(fd);
    const o = await check(file);
    expect('result' in o ? o.result : o.error).not.toBe('ok');
    expect('result' in o).toBe(true);
  });

  it('gives no verdict, rather than a false one, for a file that is not there; stop ends a running check', async () => {
    const o = await check(path.join(tmpDir(), 'missing.db'));
    expect(o).toMatchObject({ error: expect.stringMatching(/exited 1/) });
    const runner = new QuickCheckRunner();
    let out: QuickCheckOutcome | null = null;
    runner.start(dbWithEvents(100), 60_000, (x) => (out = x));
    runner.stop();
    expect(runner.running).toBe(false);
    await waitFor('the stopped check to report', () => out, 10_000);
  });
});
