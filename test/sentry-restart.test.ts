import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optimizerJob, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// The sentry and the session manager restart while workers run: workers are
// adopted, not relaunched, and the run keeps its id.

const swarm = new TestSwarm({
  name: 'restarts',
  tick: '200ms',
  lanes: { cpu: { kind: 'cpu', slots: 4, fill: 'slots' } },
  jobs: { long: optimizerJob(['--trials', '100000'], { progress: { staleAfter: '20s' } }) },
  queue: [
    { job: 'long', id: 'a' },
    { job: 'long', id: 'b' },
  ],
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

const started = (name: string) => swarm.events({ kind: 'daemon.started', target: `daemon:${name}` }).length;

describe('restarting the daemons while workers run', () => {
  it('pm2 restart of the sentry adopts running workers', async () => {
    const pa = await swarm.workerPid('long-a', 1);
    const pb = await swarm.workerPid('long-b', 1);
    const before = started('worker-sentry');
    swarm.pm2('restart', 'worker-sentry');
    await waitFor('sentry restarted', () => started('worker-sentry') > before);
    await swarm.waitEvent('worker.adopted', 'worker:long-a', (e) => e.data.pid === pa);
    await swarm.waitEvent('worker.adopted', 'worker:long-b', (e) => e.data.pid === pb);
    expect(swarm.events({ kind: 'worker.launched' })).toHaveLength(2);
    const q = swarm.query();
    expect(q.workers.map((w) => [w.id, w.pid, w.attempt])).toEqual(
      expect.arrayContaining([
        ['long-a', pa, 1],
        ['long-b', pb, 1],
      ]),
    );
  });

  it('kill -9 of the sentry with its state file gone: adopted from the worker folders', async () => {
    const pa = await swarm.workerPid('long-a', 1);
    const sentry = swarm.query().daemons.find((d) => d.name === 'worker-sentry');
    expect(sentry?.status).toBe('online');
    const before = started('worker-sentry');
    fs.rmSync(path.join(swarm.stateDir, 'worker_sentry_state.json'));
    process.kill(sentry?.pid as number, 'SIGKILL');
    await waitFor('sentry back', () => started('worker-sentry') > before, 30_000);
    await waitFor('adopted again', () => swarm.events({ kind: 'worker.adopted', target: 'worker:long-a' }).length >= 2);
    expect(swarm.events({ kind: 'worker.launched' })).toHaveLength(2);
    await waitFor('worker listed again', () =>
      swarm.query().workers.find((w) => w.id === 'long-a' && w.pid === pa && w.status === 'running'),
    );
  });

  it('session-state-manager keeps the run id and records run.resumed', async () => {
    const runId = swarm.query().run?.id;
    expect(runId).toMatch(/^r-/);
    swarm.pm2('restart', 'session-state-manager');
    const resumed = await swarm.waitEvent('run.resumed');
    expect(resumed.runId).toBe(runId);
    // Only this daemon restarted: nothing was lost, and it did not wait for the sentry.
    expect(resumed.data).toMatchObject({ requeued: [], bootChanged: false });
    const latest = JSON.parse(fs.readFileSync(path.join(swarm.stateDir, 'session_latest.json'), 'utf8')) as {
      runId: string;
      nextSteps: string[];
    };
    expect(latest.runId).toBe(runId);
    expect(latest.nextSteps.length).toBeGreaterThan(0);
    const beats = () =>
      fs
        .readFileSync(path.join(swarm.stateDir, `session_state_${runId}.jsonl`), 'utf8')
        .trim()
        .split('\n').length;
    const n = beats();
    await waitFor('more heartbeats', () => beats() > n + 2);
    const control = JSON.parse(fs.readFileSync(path.join(swarm.stateDir, 'swarm_control_state.json'), 'utf8')) as {
      schemaVersion: number;
    };
    expect(control.schemaVersion).toBe(1);
  });

  it('query works with every daemon down, from the state folder alone', async () => {
    expect(swarm.ctl('down').status).toBe(0);
    const q = await waitFor('daemons stopped', () => {
      const s = swarm.query();
      return s.daemons.every((d) => d.status === 'stopped') ? s : null;
    });
    expect(q.workers.length).toBe(2);
    expect(q.events.lastSeq).toBeGreaterThan(0);
    expect(q.nextSteps[0]).toMatch(/No daemon is running/);
    const status = swarm.ctl('status');
    expect(status.status).toBe(1);
    expect(status.stdout.indexOf('PROBLEMS')).toBeLessThan(status.stdout.indexOf('DAEMON'));
    expect(swarm.events({ kind: 'daemon.stopped' }).map((e) => e.target)).toEqual(
      expect.arrayContaining(['daemon:worker-sentry', 'daemon:session-state-manager']),
    );
  });
});
