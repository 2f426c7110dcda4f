import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../lib/proc';
import { optimizerJob, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// A reboot, as the machine sees it: PM2, every daemon, every shim and every
// worker gone at once, with no exit recorded. `swarmctl up` then brings the
// same run back: what was in flight is requeued with its checkpoint as
// attempt + 1 and no budget spent, what completed stays completed, and
// run.resumed lists what was requeued.

const swarm = new TestSwarm({
  name: 'reboot',
  tick: '250ms',
  lanes: { cpu: { kind: 'cpu', slots: 4, fill: 'slots' } },
  jobs: {
    quick: optimizerJob(['--trials', '3']),
    long: optimizerJob(['--trials', '250'], { progress: { staleAfter: '20s' } }),
    rep: { command: ['node', '-e', 'setInterval(() => {}, 1000)'], replicas: 1 },
  },
  queue: [
    { job: 'quick', id: 'q' },
    { job: 'long', id: 'a' },
    { job: 'long', id: 'b' },
  ],
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

const progress = (worker: string): number => swarm.progressIteration(worker);

const pidsOf = (worker: string): number[] => {
  const p = JSON.parse(fs.readFileSync(path.join(swarm.stateDir, 'workers', worker, 'pid.json'), 'utf8')) as {
    pid: number;
    shimPid: number;
  };
  return [p.pid, p.shimPid];
};

describe('a reboot: everything killed at once, then swarmctl up', () => {
  it('requeues what was in flight with its checkpoint as attempt + 1, and lists it in run.resumed', async () => {
    await swarm.waitEvent('task.completed', 'task:q');
    await swarm.workerPid('long-a', 1);
    await swarm.workerPid('long-b', 1);
    await swarm.workerPid('rep-0', 1);
    await waitFor('checkpoints written', () => progress('long-a') >= 10 && progress('long-b') >= 10, 30_000, 100);
    const runId = swarm.query().run?.id;
    const daemons = swarm.query().daemons.flatMap((d) => (d.pid ? [d.pid] : []));
    const god = Number(fs.readFileSync(path.join(swarm.pm2Home, 'pm2.pid'), 'utf8'));
    const work = ['long-a', 'long-b', 'rep-0'].flatMap(pidsOf);
    const lastSeq = swarm.events().at(-1)?.seq ?? 0;

    for (const pid of [god, ...daemons, ...work]) process.kill(pid, 'SIGKILL');
    const all = [god, ...daemons, ...work];
    await waitFor('everything gone', () => all.every((p) => !isAlive(p)), 30_000, 100);
    const savedA = progress('long-a');

    swarm.up();
    const resumed = await swarm.waitEvent('run.resumed', undefined, (e) => e.seq > lastSeq, 60_000);
    expect(resumed.runId).toBe(runId);
    expect(swarm.query().run?.id).toBe(runId);
    const requeued = resumed.data.requeued as { workerId: string; taskId: string | null; attempt: number }[];
    expect(requeued).toEqual(
      expect.arrayContaining([
        { workerId: 'long-a', taskId: 'a', attempt: 1 },
        { workerId: 'long-b', taskId: 'b', attempt: 1 },
        { workerId: 'rep-0', taskId: null, attempt: 1 },
      ]),
    );
    expect(requeued).toHaveLength(3);
    const back = swarm.events({ kind: 'task.requeued' }).filter((e) => e.seq > lastSeq);
    expect(back.map((e) => e.target).sort()).toEqual(['task:a', 'task:b']);

    // attempt + 1, resuming from the checkpoint; the replica runs again too.
    await swarm.workerPid('long-a', 2);
    await swarm.workerPid('rep-0', 2);
    const trial = await waitFor(
      'attempt 2 resumed from its checkpoint',
      () => {
        const out = fs.readFileSync(path.join(swarm.stateDir, 'workers', 'long-a', 'output.log'), 'utf8');
        return /resuming a from trial (\d+) \(attempt 2\)/.exec(out)?.[1];
      },
      30_000,
      200,
    );
    // The checkpoint is written every trial or so: attempt 2 starts near where attempt 1 was killed.
    expect(Number(trial)).toBeGreaterThanOrEqual(savedA - 2);
    const doneA = await swarm.waitEvent('task.completed', 'task:a', () => true, 90_000);
    expect(doneA.data.attempt).toBe(2);
    await swarm.waitEvent('task.completed', 'task:b', () => true, 90_000);

    // Lost, not failed: no failure detected, no remedy, no budget spent.
    const after = swarm.events().filter((e) => e.seq > lastSeq);
    expect(after.filter((e) => e.kind.startsWith('detect.'))).toEqual([]);
    // Lanes refilled (launch_worker), and nothing else was acted on.
    expect(after.filter((e) => e.kind === 'action.proposed' && e.data.type !== 'launch_worker')).toEqual([]);
    const sentry = JSON.parse(fs.readFileSync(path.join(swarm.stateDir, 'worker_sentry_state.json'), 'utf8')) as {
      workers: { id: string; history: { restartTimes: number[]; streak: number } }[];
    };
    expect(sentry.workers.find((w) => w.id === 'long-a')?.history).toMatchObject({ restartTimes: [], streak: 0 });
    // What completed before the reboot ran once.
    expect(swarm.events({ kind: 'worker.launched', target: 'worker:quick-q' })).toHaveLength(1);
    expect(swarm.events({ kind: 'task.completed', target: 'task:q' })).toHaveLength(1);
  }, 240_000);
});
