import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// A schedule under real PM2: firings queue tasks that run, a firing while
// the last one's task still runs is skipped (forbid), and a restarted
// session-state-manager repeats no firing.

const SLEEP = path.join(ROOT, 'test', 'fixtures', 'sleep.js');

const swarm = new TestSwarm({
  name: 'cron',
  tick: '250ms',
  lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'slots' } },
  // Every 2 s, a task of 2.5 s: every other firing finds the last one running.
  jobs: { tick: { command: ['node', SLEEP, '2500'], schedule: { cron: '*/2 * * * * *' } } },
});
beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

describe('schedules under PM2', () => {
  it('fires, skips while the last firing runs (forbid), runs the tasks, and fires nothing twice across a restart', async () => {
    const first = await swarm.waitEvent('schedule.fired', 'job:tick', () => true, 30_000);
    await swarm.waitEvent('task.completed', `task:${String(first.data.taskId)}`, () => true, 30_000);
    const skipped = await swarm.waitEvent('schedule.skipped', 'job:tick', () => true, 30_000);
    expect(skipped.data).toMatchObject({ reason: 'forbid' });
    swarm.pm2('restart', 'session-state-manager');
    const before = swarm.events({ kind: 'schedule.fired' }).length;
    await waitFor(
      'two more firings after the restart',
      () => swarm.events({ kind: 'schedule.fired' }).length >= before + 2 || null,
      60_000,
      250,
    );
    const ids = swarm.events({ kind: 'schedule.fired' }).map((e) => String(e.data.taskId));
    expect(new Set(ids).size).toBe(ids.length);
    const times = swarm.events({ kind: 'schedule.fired' }).map((e) => Date.parse(String(e.data.scheduledFor)));
    for (const t of times) expect(t % 2000).toBe(0);
    // forbid: never two of its tasks at once.
    let running = 0;
    let peak = 0;
    for (const e of swarm.events({ kind: 'task.' })) {
      if (e.kind === 'task.started') peak = Math.max(peak, ++running);
      if (e.kind === 'task.completed' || e.kind === 'task.failed') running -= 1;
    }
    expect(peak).toBe(1);
    expect(swarm.query().run?.status).toBe('running');
  }, 150_000);
});
