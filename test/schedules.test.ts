import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { actorDeps, LocalGrantor } from '../lib/actions/action';
import { compileConfig } from '../lib/config/config';
import { ConfigError } from '../lib/errors';

import { readEvents } from '../lib/event-log';
import { SqliteLeaseStore } from '../lib/actions/leases';

import { cronMatcher, latestFiring } from '../lib/schedules/cron-schedule';
import { firingTaskId, Scheduler } from '../lib/schedules/scheduler';
import { getTask, setTaskStatus } from '../lib/task-queue';
import { ManualClock } from './helpers/manual-clock';
import { tmpDir } from './helpers/tmp';
import { daemonContext } from './helpers/daemon-context';

// Schedules on an injected clock and a real swarm.db: firings on time, never
// twice (also across a restart of the daemon that fires them), missed ones
// run within startingDeadline or are skipped and recorded, and the
// CronJob's concurrency policies.

const T0 = Date.parse('2026-11-25T02:59:58.000Z');

function setup(schedule: Record<string, unknown>, dir = tmpDir(), clock = new ManualClock()) {
  const config = compileConfig(
    { name: 'sched', stateDir: dir, tick: '1s', jobs: { nightly: { command: ['true'], schedule } } },
    path.join(dir, 'swarm.config.json'),
    {},
  );
  const ctx = daemonContext('session-state-manager', config, { clock, projection: null });
  const { db } = ctx;
  const deps = actorDeps(
    'session-state-manager',
    () => new LocalGrantor(new SqliteLeaseStore(db, () => clock.now()), () => false, 60_000),
  );
  const scheduler = () => new Scheduler(deps);
  const events = (kind: string) => readEvents(db, { kindPrefix: kind });
  /** One tick per second from now for `seconds`, as the daemon ticks. */
  const run_ = async (s: Scheduler, seconds: number) => {
    for (let i = 0; i < seconds; i++) {
      clock.t += 1000;
      await s.tick(ctx, clock.now());
    }
  };
  return { ctx, db, clock, dir, scheduler, events, tick: run_ };
}

describe('schedules', () => {
  it('reads 5 and 6 fields and a time zone, as node-cron does', () => {
    const daily = cronMatcher('0 3 * * *', 'America/New_York');
    expect(daily.stepMs).toBe(60_000);
    // 03:00 in New York in November is 08:00 UTC.
    expect(latestFiring(daily, Date.parse('2026-11-25T07:00:00Z'), Date.parse('2026-11-25T09:00:00Z'))).toBe(
      Date.parse('2026-11-25T08:00:00Z'),
    );
    const every2s = cronMatcher('*/2 * * * * *', null);
    expect(every2s.stepMs).toBe(1000);
    expect(latestFiring(every2s, Date.parse('2026-11-25T08:00:00.500Z'), Date.parse('2026-11-25T08:00:03.900Z'))).toBe(
      Date.parse('2026-11-25T08:00:02Z'),
    );
  });

  it('fires each scheduled time once, and a restarted daemon does not fire it again', async () => {
    const s = setup({ cron: '0 3 * * *', timezone: 'UTC', concurrency: 'allow' });
    s.clock.t = T0;
    await s.tick(s.scheduler(), 5);
    const fired = s.events('schedule.fired');
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({
      target: 'job:nightly',
      data: { taskId: 'nightly-at-20261125T030000Z', scheduledFor: '2026-11-25T03:00:00.000Z', late: false },
    });
    expect(getTask(s.db, s.ctx.run.id, 'nightly-at-20261125T030000Z')?.status).toBe('queued');
    // A new Scheduler is a restarted session-state-manager: the mark in swarm.db says 03:00 is done.
    s.clock.t = Date.parse('2026-11-25T03:00:00.400Z');
    await s.tick(s.scheduler(), 3);
    expect(s.events('schedule.fired')).toHaveLength(1);
    // The next day fires again.
    s.clock.t = Date.parse('2026-11-26T02:59:59Z');
    await s.tick(s.scheduler(), 2);
    expect(s.events('schedule.fired').map((e) => e.data.taskId)).toEqual([
      'nightly-at-20261125T030000Z',
      'nightly-at-20261126T030000Z',
    ]);
  });

  it('a firing missed while the swarm was down runs once at start within startingDeadline, else it is skipped and recorded', async () => {
    const within = setup({ cron: '0 3 * * *', timezone: 'UTC', startingDeadline: '2h' });
    within.clock.t = Date.parse('2026-11-25T02:00:00Z');
    await within.tick(within.scheduler(), 1);
    // Down from 02:00 to 04:30: 03:00 was missed, 90 minutes ago.
    within.clock.t = Date.parse('2026-11-25T04:30:00Z');
    await within.tick(within.scheduler(), 1);
    expect(within.events('schedule.fired').map((e) => e.data)).toEqual([
      expect.objectContaining({ taskId: firingTaskId('nightly', Date.parse('2026-11-25T03:00:00Z')), late: true }),
    ]);
    await within.tick(within.scheduler(), 5);
    expect(within.events('schedule.fired')).toHaveLength(1);

    const past = setup({ cron: '0 3 * * *', timezone: 'UTC', startingDeadline: '1h' });
    past.clock.t = Date.parse('2026-11-25T02:00:00Z');
    await past.tick(past.scheduler(), 1);
    past.clock.t = Date.parse('2026-11-25T04:30:00Z');
    await past.tick(past.scheduler(), 3);
    expect(past.events('schedule.fired')).toHaveLength(0);
    const skipped = past.events('schedule.skipped');
    expect(skipped).toHaveLength(1);
    expect(skipped[0]?.data).toMatchObject({ reason: 'missed', scheduledFor: '2026-11-25T03:00:00.000Z' });
  });

  it('concurrency: forbid skips while the last firing runs; allow fires anyway; replace takes a queued one out first', async () => {
    const forbid = setup({ cron: '*/10 * * * * *' });
    forbid.clock.t = Date.parse('2026-11-25T08:00:05Z');
    await forbid.tick(forbid.scheduler(), 10); // fires at :10
    const first = String(forbid.events('schedule.fired')[0]?.data.taskId);
    setTaskStatus(forbid.db, forbid.ctx.run.id, first, 'running', new Date().toISOString());
    await forbid.tick(forbid.scheduler(), 10); // :20, still running
    expect(forbid.events('schedule.skipped')[0]?.data).toMatchObject({ reason: 'forbid', lastTaskId: first });
    setTaskStatus(forbid.db, forbid.ctx.run.id, first, 'completed', new Date().toISOString());
    await forbid.tick(forbid.scheduler(), 10); // :30
    expect(forbid.events('schedule.fired')).toHaveLength(2);

    const allow = setup({ cron: '*/10 * * * * *', concurrency: 'allow' });
    allow.clock.t = Date.parse('2026-11-25T08:00:05Z');
    await allow.tick(allow.scheduler(), 30);
    expect(allow.events('schedule.fired')).toHaveLength(3);

    const replace = setup({ cron: '*/10 * * * * *', concurrency: 'replace' });
    replace.clock.t = Date.parse('2026-11-25T08:00:05Z');
    await replace.tick(replace.scheduler(), 20);
    const fired = replace.events('schedule.fired');
    expect(fired).toHaveLength(2);
    expect(fired[1]?.data.replaced).toBe(fired[0]?.data.taskId);
    expect(getTask(replace.db, replace.ctx.run.id, String(fired[0]?.data.taskId))?.status).toBe('failed');
  });

  it('a bad expression or time zone is a config error naming the field', () => {
    const bad = (schedule: Record<string, unknown>) => {
      try {
        compileConfig(
          { name: 'x', stateDir: tmpDir(), jobs: { nightly: { command: ['true'], schedule } } },
          '/tmp/x.json',
          {},
        );
      } catch (err) {
        return err instanceof ConfigError ? err.message : String(err);
      }
      return 'accepted';
    };
    expect(bad({ cron: '61 * * * *' })).toMatch(
      /jobs\.nightly\.schedule\.cron: minute: 61 is a invalid expression for minute/,
    );
    expect(bad({ cron: '* * *' })).toMatch(
      /jobs\.nightly\.schedule\.cron: expected 5 fields .* or 6 \(seconds first\); got 3/,
    );
    expect(bad({ cron: '0 3 * * *', timezone: 'Mars/Olympus' })).toMatch(
      /jobs\.nightly\.schedule\.timezone: expected an IANA time zone/,
    );
    expect(bad({ cron: '0 3 * * *', concurrency: 'sometimes' })).toMatch(/jobs\.nightly\.schedule\.concurrency/);
  });
});
