import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_NAMES, type DaemonName } from '../lib/event-kinds';
import { optimizerJob, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// The control plane heals itself: any one daemon killed, hung or stopped
// comes back, any one state file corrupted or deleted is repaired, and
// hang-guard ends overrunning work.

// Every daemon there is: a new one is covered here without a word of this file changing.
const DAEMONS: readonly DaemonName[] = DAEMON_NAMES;

const swarm = new TestSwarm({
  name: 'control',
  tick: '250ms',
  watchdog: { staleAfter: '4s' },
  hangGuard: { killGrace: '1s' },
  consensus: { selfGrantAfter: '1s' },
  lanes: { cpu: { kind: 'cpu', slots: 4, fill: 'slots' } },
  jobs: {
    steady: optimizerJob(['--trials', '100000'], {
      progress: { staleAfter: '30s' },
      restart: { delay: '100ms', budget: 20 },
    }),
    overrun: optimizerJob(['--trials', '100000'], { maxRuntime: '2s', restart: { delay: '100ms', budget: 20 } }),
    opstuck: optimizerJob(['--trials', '100000', '--op-deadline-ms', '1500', '--hang-at', '3'], {
      progress: { staleAfter: '60s' },
      restart: { delay: '100ms', budget: 20 },
    }),
  },
  queue: [
    { job: 'steady', id: 's1' },
    { job: 'overrun', id: 'o1' },
    { job: 'opstuck', id: 'p1' },
  ],
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

const daemon = (name: DaemonName) => swarm.query().daemons.find((d) => d.name === name);
const allOnline = () => {
  const q = swarm.query();
  return DAEMONS.every((n) => q.daemons.find((d) => d.name === n)?.status === 'online') ? q : null;
};

async function onlinePid(name: DaemonName): Promise<number> {
  return waitFor(
    `${name} online`,
    () => {
      const d = daemon(name);
      return d?.status === 'online' ? d.pid : null;
    },
    60_000,
    200,
  );
}

describe('a control plane that heals itself', () => {
  it('every daemon comes online', async () => {
    await waitFor('all online', allOnline, 60_000, 250);
  });

  for (const name of DAEMONS) {
    it(`${name}: kill -9, SIGSTOP and pm2 stop each end with all daemons online again`, async () => {
      const p1 = await onlinePid(name);
      await waitFor('all online', allOnline, 60_000, 250);
      process.kill(p1, 'SIGKILL');
      const p2 = await waitFor(
        `${name} back after kill -9`,
        () => {
          const d = daemon(name);
          return d?.status === 'online' && d.pid !== p1 ? d.pid : null;
        },
        60_000,
        200,
      );
      await waitFor('all online', allOnline, 60_000, 250);

      const staleSeq = swarm.query().events.lastSeq;
      process.kill(p2, 'SIGSTOP');
      const stale = await swarm.waitEvent('detect.daemon_stale', `daemon:${name}`, (e) => e.seq > staleSeq, 60_000);
      expect(stale.data.reason).toMatch(/stopped|no tick/);
      await swarm.waitEvent('action.verified', `daemon:${name}`, (e) => e.seq > stale.seq, 60_000);
      const p3 = await onlinePid(name);
      expect(p3).not.toBe(p2);
      await waitFor('all online', allOnline, 60_000, 250);

      const stopSeq = swarm.query().events.lastSeq;
      swarm.pm2('stop', name);
      const missing = await swarm.waitEvent('detect.daemon_missing', `daemon:${name}`, (e) => e.seq > stopSeq, 60_000);
      await swarm.waitEvent('action.verified', `daemon:${name}`, (e) => e.seq > missing.seq, 60_000);
      await waitFor('all online', allOnline, 60_000, 250);
    }, 200_000);
  }

  it('every state file, deleted or corrupted, is repaired, and query never fails meanwhile', async () => {
    const files = [
      'watchdog_state.json',
      'worker_sentry_state.json',
      'hang_guard_state.json',
      'util_controller_state.json',
      'orchestrator_consensus_state.json',
      'session_state_manager_state.json',
      'operator_gateway_state.json',
      'swarm_control_state.json',
      'session_latest.json',
    ];
    for (const [i, file] of files.entries()) {
      const full = path.join(swarm.stateDir, file);
      const before = swarm.query().events.lastSeq;
      if (i % 2 === 0) fs.rmSync(full, { force: true });
      else fs.writeFileSync(full, '{"half": "writ');
      await waitFor(
        `${file} repaired`,
        () => {
          const q = swarm.query(); // throws, failing the test, if query ever fails
          expect(q.schemaVersion).toBe(1);
          return swarm.events({ kind: 'state.repaired', target: `state:${file}` }).some((e) => e.seq > before);
        },
        30_000,
        100,
      );
      expect(JSON.parse(fs.readFileSync(full, 'utf8'))).toBeTruthy();
    }
  }, 120_000);

  it('with consensus hung, a crashed worker is still healed, granted by the sentry itself', async () => {
    const consensus = await onlinePid('orchestrator-consensus');
    const worker = await swarm.workerPid('steady-s1');
    const before = swarm.query().events.lastSeq;
    process.kill(consensus, 'SIGSTOP');
    process.kill(worker, 'SIGKILL');
    const granted = await swarm.waitEvent('action.granted', 'worker:steady-s1', (e) => e.seq > before, 30_000);
    // The frozen consensus never answers: the sentry grants itself after selfGrantAfter, unless the
    // watchdog (which restarts consensus at once, without asking it) had a new consensus up first.
    if (granted.data.grantedBy !== 'self') {
      const back = swarm
        .events()
        .find(
          (e) =>
            e.kind === 'daemon.started' &&
            e.target === 'daemon:orchestrator-consensus' &&
            e.seq > before &&
            e.data.pid !== consensus,
        );
      expect(back?.seq).toBeLessThan(granted.seq);
    }
    await swarm.waitEvent('action.verified', 'worker:steady-s1', (e) => e.actionId === granted.actionId, 30_000);
    // The watchdog brings consensus back and normal grants resume.
    await waitFor(
      'consensus back',
      () => {
        const d = daemon('orchestrator-consensus');
        return d?.status === 'online' && d.pid !== consensus;
      },
      60_000,
      250,
    );
  });

  it('hang-guard ends a worker past maxRuntime: process group gone, verified, restarted by the sentry', async () => {
    const d = await swarm.waitEvent(
      'detect.runtime_exceeded',
      'worker:overrun-o1',
      (e) => e.data.limit === 'maxRuntime',
    );
    const stop = await swarm.waitEvent(
      'action.verified',
      'worker:overrun-o1',
      (e) => e.data.type === 'stop_worker' && e.seq > d.seq,
    );
    expect(stop.source).toBe('hang-guard');
    await swarm.waitEvent('worker.launched', 'worker:overrun-o1', (e) => e.seq > stop.seq && e.data.attempt === 2);
  });

  it('hang-guard ends an operation past the deadline it declared', async () => {
    const d = await swarm.waitEvent(
      'detect.runtime_exceeded',
      'worker:opstuck-p1',
      (e) => e.data.limit === 'operation',
    );
    expect(d.data.operation).toBe('trial 3');
    await swarm.waitEvent(
      'action.verified',
      'worker:opstuck-p1',
      (e) => e.data.type === 'stop_worker' && e.seq > d.seq,
    );
  });
});
