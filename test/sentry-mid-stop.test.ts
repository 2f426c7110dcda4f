import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { progressFileFor } from '../lib/worker/files';
import { killHarnessChildren, sentryHarness } from './helpers/sentry-harness';
import { waitFor } from './helpers/tmp';

// A worker-sentry killed between signalling a worker and its tick's end (the
// hour-long soak's kill_daemon fault landed 56 ms after action.started). Its
// successor must know from the state file that the exit was asked for, carry
// the remedy through and verify it, and finish a stop that was never finished:
// one incident, never a second one for an exit Swarm caused.

afterAll(killHarnessChildren);

const JOB = { progress: { staleAfter: '1s' }, stopGrace: '300ms' };

/** Launches task `a` under a first sentry daemon, then lets its progress go stale and abandons that sentry mid-stop. */
async function killedMidStop(h: ReturnType<typeof sentryHarness>) {
  const first = await h.running('a');
  first.clock.t += 1000;
  // The stop waits out its grace on a clock nobody moves again: this sentry is dead from here on.
  void first.tick();
  await waitFor('the restart to start', () => h.kinds('worker:j-a').includes('action.started'), 10_000, 20);
  return first;
}

describe('worker-sentry killed in the middle of stopping a worker', () => {
  it('its successor reads the stop from the state file: the exit is Swarm-requested, the restart runs and is verified', async () => {
    const h = sentryHarness({ jobExtra: JOB });
    await killedMidStop(h);
    await h.exited('a');
    const second = await h.daemon();
    await second.tick(0);
    const exits = h.events('worker:j-a').filter((e) => e.kind === 'worker.exited');
    expect(exits.at(-1)?.data.requestedBy).toBe('swarm');
    expect(h.kinds('worker:j-a')).not.toContain('detect.worker_crashed');
    expect(second.sentry.workers.get('j-a')?.status).toBe('backoff');

    // The restart delay (1 s) from when the first sentry acted, then the relaunch.
    await second.tick(1000);
    await second.tick();
    await waitFor('attempt 2', () => second.sentry.workers.get('j-a')?.attempt === 2, 10_000, 20);
    await h.launched('a');
    const job = second.ctx.config.jobs.j;
    const w = second.sentry.workers.get('j-a');
    if (!job || !w) throw new Error('worker j-a not relaunched');
    const progress = (n: number) =>
      fs.writeFileSync(
        progressFileFor(second.ctx.config, job, w),
        JSON.stringify({ updatedAt: `p${n}`, iteration: n }),
      );
    const stale = h.events('worker:j-a').find((e) => e.kind === 'detect.progress_stale');
    await waitFor(
      'the restart verified',
      async () => {
        progress(Math.random());
        await second.tick();
        return h.kinds('worker:j-a').includes('action.verified');
      },
      10_000,
      20,
    );
    const verified = h.events('worker:j-a').find((e) => e.kind === 'action.verified');
    expect(verified?.data.incidentId).toBe(stale?.seq);
    expect(h.kinds('worker:j-a').filter((k) => k === 'detect.progress_stale')).toHaveLength(1);
    expect(h.kinds('worker:j-a')).not.toContain('action.failed');
  }, 60_000);

  it('a worker that outlived the SIGTERM is ended by the successor: the SIGKILL the dead sentry never sent', async () => {
    const h = sentryHarness({ jobExtra: JOB, ignoreTerm: true });
    await killedMidStop(h);
    const second = await h.daemon();
    let done = false;
    const ticking = second.tick(0).then(() => void (done = true));
    // The successor's stop waits out the grace on its own clock, moved here in small steps.
    await waitFor(
      "the successor's stop",
      async () => {
        await second.clock.advance(25);
        return done;
      },
      10_000,
      20,
    );
    await ticking;
    await h.exited('a');
    await second.tick(0);
    const exits = h.events('worker:j-a').filter((e) => e.kind === 'worker.exited');
    expect(exits).toHaveLength(1);
    expect(exits[0]?.data).toMatchObject({ requestedBy: 'swarm', signal: 'SIGKILL' });
    expect(h.kinds('worker:j-a').filter((k) => k === 'detect.progress_stale')).toHaveLength(1);
    expect(h.kinds('worker:j-a')).not.toContain('detect.worker_crashed');
    expect(second.sentry.workers.get('j-a')?.status).toBe('backoff');
  }, 60_000);
});
