import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSpec } from '../lib/worker/files';
import { killHarnessChildren, sentryHarness } from './helpers/sentry-harness';
import { waitFor } from './helpers/tmp';

// A worker-sentry killed between asking PM2 to start a worker and logging
// worker.launched (the hour-long soak's run 4: a sentry SIGSTOPped inside a
// restart's launch, a crash-looping worker that started, crashed and was
// started again by the successor, 6 starts against 5 launches). spec.json is
// the launch's write-ahead record: the successor takes the attempt up from
// it, records the launch once the shim shows it ran, and starts it again only
// if it never did. Every start is one worker.launched, each attempt once.

afterAll(killHarnessChildren);

type Harness = ReturnType<typeof sentryHarness>;

/** Task `a` runs and crashes under a first sentry, which is killed inside the restart's start of attempt 2. */
async function killedMidLaunch(h: Harness, hang: 'after-spawn' | 'hold') {
  const first = await h.running('a');
  await h.exit('a', 1);
  await first.tick();
  expect(first.sentry.workers.get('j-a')?.status).toBe('backoff');
  first.clock.t += 1000;
  h.pm.hangStart = hang;
  // The restart delay is over: this tick relaunches, and never comes back from PM2's start.
  void first.tick();
  const dir = path.join(first.ctx.config.stateDir, 'workers', 'j-a');
  await waitFor('attempt 2 begun', () => readSpec(dir)?.attempt === 2, 10_000, 20);
  return first;
}

const launches = (h: Harness) =>
  h
    .events('worker:j-a')
    .filter((e) => e.kind === 'worker.launched')
    .map((e) => [e.data.attempt, e.data.recordedOnAdoption ?? false]);

describe('worker-sentry killed in the middle of launching a worker', () => {
  it('an attempt that started and ended unrecorded is adopted and logged; its exit is its own, and the next start is attempt 3', async () => {
    const h = sentryHarness();
    await killedMidLaunch(h, 'after-spawn');
    await h.launched('a');
    h.pm.hangStart = null;
    await h.exit('a', 1);
    const second = await h.daemon();
    expect(second.sentry.workers.get('j-a')?.attempt).toBe(2);
    expect(launches(h)).toEqual([
      [1, false],
      [2, true],
    ]);
    await second.tick(0);
    expect(h.events('worker:j-a').filter((e) => e.kind === 'worker.exited')).toHaveLength(2);
    await second.tickUntil('attempt 3', () => second.sentry.workers.get('j-a')?.attempt === 3);
    await h.launched('a');
    expect(launches(h)).toEqual([
      [1, false],
      [2, true],
      [3, false],
    ]);
    expect(h.pm.started).toHaveLength(3);
  }, 60_000);

  it('an attempt whose shim reports after the successor began is logged then, once', async () => {
    const h = sentryHarness();
    await killedMidLaunch(h, 'hold');
    h.pm.hangStart = null;
    const second = await h.daemon();
    await second.tick();
    expect(launches(h)).toEqual([[1, false]]);
    h.pm.spawnHeld();
    await h.launched('a');
    await second.tick();
    await second.tick();
    expect(launches(h)).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(second.sentry.workers.get('j-a')).toMatchObject({ attempt: 2, status: 'running' });
    expect(second.sentry.workers.get('j-a')?.pid).not.toBeNull();
    expect(h.pm.started).toHaveLength(2);
  }, 60_000);

  it('an attempt PM2 never started is launched again as the same attempt, logged once', async () => {
    const h = sentryHarness();
    await killedMidLaunch(h, 'hold');
    h.pm.hangStart = null;
    const second = await h.daemon();
    await second.tick();
    expect(second.sentry.workers.get('j-a')).toMatchObject({ attempt: 2, pid: null });
    // The shim has 15 s to show itself; then the start is taken never to have happened.
    second.clock.t += 15_000;
    await second.tick();
    expect(second.sentry.workers.get('j-a')).toMatchObject({ attempt: 1, status: 'backoff' });
    await second.tickUntil('attempt 2 again', () => second.sentry.workers.get('j-a')?.attempt === 2);
    await h.launched('a');
    expect(launches(h)).toEqual([
      [1, false],
      [2, false],
    ]);
    expect(h.pm.started).toHaveLength(2);
    expect(fs.existsSync(path.join(second.ctx.config.stateDir, 'workers', 'j-a', 'pid.json'))).toBe(true);
  }, 60_000);
});
