import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeNvidiaSmi } from './helpers/fake-smi';
import { optimizerJob, TestSwarm } from './helpers/swarm';
import { tmpDir, waitFor } from './helpers/tmp';

// util-controller against real workers: a lane filled while use is below
// target, GPU binding checked through a fake nvidia-smi that lists the real
// workers' pids, and memory over the ceiling answered by requeueing the
// newest fill worker with its checkpoint.

const smiDir = tmpDir('swarm-smi-');
const smi = fakeNvidiaSmi(smiDir, { fixture: 'dual_2070-v13.xml', pids: {} });

const config = (memoryCeiling: number) => ({
  name: 'util',
  tick: '250ms',
  utilization: {
    cpuTarget: 100,
    memoryCeiling,
    window: '1s',
    scaleDownStabilization: '2s',
    gpuGrace: '6s',
    retention: '1h',
  },
  lanes: {
    cpu: { kind: 'cpu', slots: 2, fill: 'utilization' },
    gpu: { kind: 'gpu', slots: 2, gpus: [0, 1], fill: 'slots' },
    // Filled by slots: the memory test is about backing off, and a utilization lane on a machine
    // busy with other tests rightly holds (lane_starved), which made that test time out under load.
    mem: { kind: 'cpu', slots: 1, fill: 'slots', hideGpus: false },
  },
  jobs: {
    fit: optimizerJob(['--trials', '250'], { lane: 'cpu', progress: { staleAfter: '30s' } }),
    train: optimizerJob(['--trials', '100000'], { lane: 'gpu', progress: { staleAfter: '30s' } }),
    late: optimizerJob(['--trials', '150'], { lane: 'mem', progress: { staleAfter: '30s' } }),
  },
  queue: [
    { job: 'fit', id: 'f1' },
    { job: 'train', id: 'g0' },
    { job: 'train', id: 'g1' },
  ],
});

const swarm = new TestSwarm(config(99), { SWARM_NVIDIA_SMI: smi.bin });

beforeAll(() => {
  // train-g0 holds a context on its GPU from its first moment, whichever it is given: it must never be
  // judged gpu_fallback, however long the machine takes to reach the GPU test.
  const g0 = path.join(swarm.stateDir, 'workers', 'train-g0', 'pid.json');
  smi.set({ fixture: 'dual_2070-v13.xml', pidFiles: { '0': [g0], '1': [g0] } });
  swarm.up();
}, 60_000);
afterAll(() => swarm.teardown());

describe('util-controller', () => {
  it('fills a cpu lane once use has been below target for the window', async () => {
    const fill = await swarm.waitEvent('action.proposed', 'lane:cpu', (e) => e.data.type === 'launch_worker', 60_000);
    expect(String(fill.data.reason)).toMatch(/below 90% \(mean over 1s and now\)|no utilization reading/);
    const low = swarm.events({ kind: 'detect.util_low', target: 'lane:cpu' })[0];
    expect(fill.data.incidentId).toBe(low?.seq);
    await swarm.waitEvent('action.verified', 'lane:cpu', (e) => e.actionId === fill.seq, 60_000);
    await swarm.waitEvent('task.started', 'task:f1');
  });

  it('GPU lanes: CUDA_VISIBLE_DEVICES per slot; gpu_fallback for a worker missing from its GPU, none for one present; unexpected_gpu_context for CPU work on a GPU', async () => {
    const g0 = await swarm.workerPid('train-g0');
    const g1 = await swarm.workerPid('train-g1');
    const f1 = await swarm.workerPid('fit-f1');
    const q = swarm.query();
    const gpusOf = (id: string) => q.workers.find((w) => w.id === id)?.gpus ?? [];
    const [a, b] = [gpusOf('train-g0')[0], gpusOf('train-g1')[0]];
    expect([a, b].sort()).toEqual([0, 1]);
    const spec = JSON.parse(fs.readFileSync(path.join(swarm.stateDir, 'workers', 'train-g0', 'spec.json'), 'utf8')) as {
      env: Record<string, string>;
    };
    expect(spec.env.CUDA_VISIBLE_DEVICES).toBe(String(a));
    // A cpu lane's worker sees no GPU (an empty CUDA_VISIBLE_DEVICES hides them all from CUDA).
    const cpuSpec = JSON.parse(
      fs.readFileSync(path.join(swarm.stateDir, 'workers', 'fit-f1', 'spec.json'), 'utf8'),
    ) as { env: Record<string, string> };
    expect(cpuSpec.env.CUDA_VISIBLE_DEVICES).toBe('');
    // train-g0 is on its GPU, train-g1 is not on any, and the CPU job fit-f1 sits on train-g1's GPU.
    smi.set({ fixture: 'dual_2070-v13.xml', pids: { [String(a)]: [g0], [String(b)]: [f1] } });
    const fallback = await swarm.waitEvent('detect.gpu_fallback', 'worker:train-g1', () => true, 30_000);
    expect(fallback.data.assignedGpus).toEqual([b]);
    const unexpected = await swarm.waitEvent('detect.unexpected_gpu_context', 'worker:fit-f1', () => true, 30_000);
    expect(unexpected.data.holdingGpus).toEqual([b]);
    expect(swarm.events({ kind: 'detect.gpu_fallback', target: 'worker:train-g0' })).toHaveLength(0);
    expect(g1).toBeGreaterThan(0);
    const util = await waitFor('gpus in query', () => {
      const u = swarm.query().utilization;
      return u.gpus.length === 2 ? u : null;
    });
    expect(util.gpus).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ index: 0, name: 'NVIDIA GeForce RTX 2070', memTotalMiB: 8192 }),
      ]),
    );
  });

  it('keeps utilization samples in swarm.db', async () => {
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path.join(swarm.stateDir, 'swarm.db'), { readonly: true });
    const series = db
      .prepare('SELECT DISTINCT series FROM samples')
      .all()
      .map((r) => (r as { series: string }).series);
    db.close();
    expect(series).toEqual(
      expect.arrayContaining(['cpu', 'mem', 'lane:cpu:busy', 'lane:gpu:busy', 'gpu:0:util', 'gpu:1:mem']),
    );
  });

  it('memory over the ceiling: the newest fill worker is stopped, its task requeued with its checkpoint, and nothing is lost', async () => {
    // Submitted last, so its worker is the newest fill worker of any lane.
    expect(swarm.ctl('submit', 'late', '--id', 'm1').status).toBe(0);
    const m1 = await swarm.workerPid('late-m1');
    // Its lane opts out of hiding GPUs: the job's environment decides.
    const lateSpec = JSON.parse(
      fs.readFileSync(path.join(swarm.stateDir, 'workers', 'late-m1', 'spec.json'), 'utf8'),
    ) as { env: Record<string, string> };
    expect(lateSpec.env).not.toHaveProperty('CUDA_VISIBLE_DEVICES');
    const newest = swarm
      .query()
      .workers.filter((w) => w.status === 'running')
      .sort((x, y) => Date.parse(y.startedAt ?? '') - Date.parse(x.startedAt ?? ''))[0];
    expect(newest?.id).toBe('late-m1');
    const before = swarm.query().events.lastSeq;
    swarm.writeConfig(config(1));
    swarm.pm2('restart', 'util-controller');
    const pressure = await swarm.waitEvent('detect.memory_pressure', undefined, (e) => e.seq > before, 30_000);
    const victim = String(pressure.data.victim);
    expect(victim).toBe('late-m1');
    const requeued = await swarm.waitEvent('task.requeued', undefined, (e) => e.seq > before, 30_000);
    expect(requeued.data.workerId).toBe(victim);
    await swarm.waitEvent('action.verified', `worker:${victim}`, (e) => e.data.type === 'requeue_task', 30_000);
    expect(swarm.query().tasks.queued).toBeGreaterThanOrEqual(1);
    // Memory back under the ceiling: the task runs again, resumes from its checkpoint and completes.
    swarm.writeConfig(config(99));
    swarm.pm2('restart', 'util-controller');
    const taskId = 'm1';
    await swarm.waitEvent('task.completed', `task:${taskId}`, () => true, 90_000);
    const log = fs.readFileSync(path.join(swarm.stateDir, 'workers', victim, 'output.log'), 'utf8');
    expect(log).toMatch(/resuming .* \(attempt 2\)/);
    expect(m1).toBeGreaterThan(0);
  }, 180_000);
});
