import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optimizerJob, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// Twenty workers fail at once and keep failing: the circuit breaker opens
// with one escalation, and no restart storm follows. A person's ack makes it
// half-open: one trial, which fails, and it opens again.

const swarm = new TestSwarm({
  name: 'storm',
  tick: '250ms',
  consensus: { maxConcurrentActions: 4, breaker: { failures: 5, window: '1m' } },
  lanes: { cpu: { kind: 'cpu', slots: 20, fill: 'slots' } },
  jobs: {
    doomed: optimizerJob(['--trials', '100', '--crash-at', '2', '--fault-attempts', '0'], {
      restart: { delay: '100ms', maxDelay: '200ms', budget: 100, window: '1h' },
      startup: { marker: 'optimizer ready', within: '20s' },
      progress: { staleAfter: '30s' },
    }),
  },
  queue: Array.from({ length: 20 }, (_, i) => ({ job: 'doomed', id: `d${i}` })),
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

describe('circuit breaker under a storm of failures', () => {
  it('opens with one escalation and holds restarts back', async () => {
    const esc = await swarm.waitEvent(
      'escalation.raised',
      undefined,
      (e) => String(e.data.reason).startsWith('swarm degraded'),
      90_000,
    );
    expect(esc.target).toMatch(/^run:/);
    // Give the storm every chance: wait until the sentry has asked again and again, and been held back.
    const openedAt = esc.seq;
    await waitFor('breaker open in consensus state', () =>
      swarm.query().escalations.some((e) => e.id === openedAt && e.status === 'open'),
    );
    const heldBack = () =>
      swarm
        .events({ kind: 'action.denied' })
        .filter((e) => e.seq > openedAt && /circuit breaker open/.test(String(e.data.reason)));
    await waitFor('restart proposals held back', () => heldBack().length >= 25, 60_000, 250);
    const launchesAfter = swarm.events({ kind: 'worker.launched' }).filter((e) => e.seq > openedAt);
    // At most the restarts already granted before it opened (the concurrency limit) may still land.
    expect(launchesAfter.length).toBeLessThanOrEqual(4);
    expect(
      swarm.events({ kind: 'escalation.raised' }).filter((e) => String(e.data.reason).startsWith('swarm degraded')),
    ).toHaveLength(1);
    // The run's own word for it, which notify sends by default.
    const degraded = swarm.events({ kind: 'run.degraded' });
    expect(degraded).toHaveLength(1);
    expect(degraded[0]).toMatchObject({ target: esc.target, data: { escalationId: esc.seq } });
    const status = swarm.ctl('status').stdout;
    expect(status.split('\n')[0]).toMatch(/DEGRADED/);
    expect(status).toMatch(/PROBLEMS\n  ! the swarm is DEGRADED/);
    // Safety still runs: nothing here needs it, but quarantine is never held back (arbiter tests).
  });

  it('ack makes it half-open: one trial runs, fails, and it opens again with a new escalation', async () => {
    const first = swarm
      .events({ kind: 'escalation.raised' })
      .find((e) => String(e.data.reason).startsWith('swarm degraded'));
    expect(swarm.ctl('ack', String(first?.seq)).status).toBe(0);
    await swarm.waitEvent('consensus.breaker', undefined, (e) => e.data.to === 'half-open');
    const reopened = await swarm.waitEvent(
      'consensus.breaker',
      undefined,
      (e) => e.data.from === 'half-open' && e.data.to === 'open',
      60_000,
    );
    expect(reopened.data.reason).toMatch(/trial action failed/);
    expect(
      swarm.events({ kind: 'escalation.raised' }).filter((e) => String(e.data.reason).startsWith('swarm degraded')),
    ).toHaveLength(2);
    expect(swarm.events({ kind: 'run.degraded' })).toHaveLength(2);
  });
});
