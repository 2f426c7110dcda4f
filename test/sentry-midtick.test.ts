import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optimizerJob, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// The sentry ends between launching workers and writing its state file (the
// watchdog restarted it mid-tick, or it was killed). Its workers are running
// all the same: the restarted sentry must adopt them rather than run their
// tasks a second time, and the fill action it had not yet verified must not
// keep the lane's lease. Found at 100 workers, where a tick of launches ran
// past the watchdog's limit.

const swarm = new TestSwarm({
  name: 'midtick',
  tick: '200ms',
  lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'slots' } },
  // A minute per trial: no progress, so the workers stay unverified and so does the fill.
  jobs: { slow: optimizerJob(['--trials', '1000', '--trial-ms', '60000'], { progress: { staleAfter: '5m' } }) },
  queue: [
    { job: 'slow', id: 'a' },
    { job: 'slow', id: 'b' },
  ],
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

const started = () => swarm.events({ kind: 'daemon.started', target: 'daemon:worker-sentry' }).length;

describe('a sentry that ended before recording its launches', () => {
  it('adopts the workers its state file does not list, runs no task twice, and frees the unverified fill', async () => {
    const pids = await waitFor('both workers have pids', () => {
      const ws = swarm.query().workers.filter((w) => w.pid !== null);
      return ws.length === 2 ? Object.fromEntries(ws.map((w) => [w.id, w.pid])) : null;
    });
    const fill = await swarm.waitEvent('action.started', 'lane:cpu');
    expect(swarm.events({ kind: 'action.verified', target: 'lane:cpu' })).toHaveLength(0);

    // Freeze the sentry, take the launches out of its state file, then kill it: as if it
    // had ended before writing them. PM2 starts it again.
    const sentry = swarm.query().daemons.find((d) => d.name === 'worker-sentry');
    expect(sentry?.status).toBe('online');
    const before = started();
    process.kill(sentry?.pid as number, 'SIGSTOP');
    const file = path.join(swarm.stateDir, 'worker_sentry_state.json');
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(file, JSON.stringify({ ...state, workers: [], views: [] }));
    process.kill(sentry?.pid as number, 'SIGKILL');
    await waitFor('sentry back', () => started() > before, 30_000);

    for (const [id, pid] of Object.entries(pids))
      await swarm.waitEvent('worker.adopted', `worker:${id}`, (e) => e.data.pid === pid);
    const settled = await swarm.waitEvent('action.verified', 'lane:cpu', (e) => e.actionId === fill.actionId);
    expect(settled.data.message).toMatch(/settled after a sentry restart/);
    expect(swarm.events({ kind: 'task.requeued' })).toHaveLength(0);
    expect(swarm.events({ kind: 'worker.launched' })).toHaveLength(2);
    const q = swarm.query();
    expect(Object.fromEntries(q.workers.map((w) => [w.id, w.pid]))).toEqual(pids);
    expect(q.tasks).toMatchObject({ running: 2, queued: 0 });
  });
});
