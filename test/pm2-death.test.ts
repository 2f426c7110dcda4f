import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../lib/proc';
import { optimizerJob, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// PM2's own God daemon killed with kill -9: every daemon of the swarm goes
// with it, but the work must not. The worker's shim runs apart from PM2
// (lib/worker-anchor.js), with no pipe to anything PM2 owns, so the worker
// runs on, and `swarmctl up` brings the swarm back to adopt it.

const swarm = new TestSwarm({
  name: 'pm2death',
  tick: '250ms',
  lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'slots' } },
  jobs: { work: optimizerJob(['--trials', '150', '--trial-ms', '150'], { progress: { staleAfter: '20s' } }) },
  queue: [{ job: 'work', id: 'a' }],
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

const iteration = (worker = 'work-a'): number => swarm.progressIteration(worker);

describe("PM2's God daemon killed", () => {
  it('the worker runs on; swarmctl up adopts it with its pid, and its task completes once', async () => {
    const pid = await swarm.workerPid('work-a', 1);
    const daemons = swarm.query().daemons.flatMap((d) => (d.pid ? [d.pid] : []));
    expect(daemons.length).toBeGreaterThan(0);
    const god = Number(fs.readFileSync(path.join(swarm.pm2Home, 'pm2.pid'), 'utf8'));
    process.kill(god, 'SIGKILL');
    await waitFor('every daemon gone with PM2', () => daemons.every((d) => !isAlive(d)), 30_000, 100);
    // No Swarm runs now, and the worker still does its work.
    expect(isAlive(pid)).toBe(true);
    const seen = iteration();
    await waitFor('progress with no Swarm running', () => iteration() > seen, 15_000, 100);

    swarm.up();
    await swarm.waitEvent('worker.adopted', 'worker:work-a', (e) => e.data.pid === pid);
    const done = await swarm.waitEvent('task.completed', 'task:a', () => true, 90_000);
    expect(done.data.attempt).toBe(1);
    const exited = swarm.events({ kind: 'worker.exited', target: 'worker:work-a' });
    expect(exited.map((e) => [e.data.pid, e.data.exitCode])).toEqual([[pid, 0]]);
    expect(swarm.events({ kind: 'worker.launched' })).toHaveLength(1);
    expect(swarm.events({ kind: 'task.completed' })).toHaveLength(1);
  }, 150_000);

  it('pm2 resurrect, from the list `up` saved, brings the swarm back the same way', async () => {
    expect(swarm.ctl('submit', 'work', '--id', 'b').status).toBe(0);
    const pid = await swarm.workerPid('work-b', 1);
    const daemons = swarm.query().daemons.flatMap((d) => (d.pid ? [d.pid] : []));
    process.kill(Number(fs.readFileSync(path.join(swarm.pm2Home, 'pm2.pid'), 'utf8')), 'SIGKILL');
    await waitFor('every daemon gone with PM2', () => daemons.every((d) => !isAlive(d)), 30_000, 100);
    expect(isAlive(pid)).toBe(true);
    swarm.pm2('resurrect');
    await swarm.waitEvent('worker.adopted', 'worker:work-b', (e) => e.data.pid === pid);
    await swarm.waitEvent('task.completed', 'task:b', () => true, 90_000);
    expect(swarm.events({ kind: 'worker.launched', target: 'worker:work-b' })).toHaveLength(1);
    // What the saved list held of task a's worker, long done, started nothing again.
    expect(swarm.events({ kind: 'worker.launched', target: 'worker:work-a' })).toHaveLength(1);
    expect(swarm.events({ kind: 'task.completed' })).toHaveLength(2);
    expect(iteration('work-b')).toBe(150);
  }, 150_000);
});
