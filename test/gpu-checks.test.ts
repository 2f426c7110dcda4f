import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNvidiaSmiXml, type GpuReading } from '../lib/nvidia-smi';
import { readCmdline } from '../lib/proc';
import { checkGpuBinding, sameProcess } from '../lib/utilization/gpu-checks';
import { newWorkerRecord, type WorkerRecord } from '../lib/worker/record';
import { FIXTURES } from './helpers/fake-smi';
import { ROOT } from './helpers/swarm';

// A pid in nvidia-smi's list names a worker's process only while the process
// nvidia-smi named still holds that pid.

function worker(pid: number, launchedAt = 0): WorkerRecord {
  return { ...newWorkerRecord({ id: 'fit-1', job: 'fit', taskId: null, slot: 0, lane: 'cpu' }), pid, launchedAt };
}

function reading(pid: number, name: string | null): GpuReading[] {
  return [
    {
      index: 0,
      uuid: null,
      name: 'T4',
      utilPct: 0,
      memUsedMiB: 0,
      memTotalMiB: 0,
      temperatureC: 0,
      processes: [{ pid, name, usedMiB: 512 }],
    },
  ];
}

describe('gpu binding: which listed pid is a worker', () => {
  let child: ChildProcess;
  let pid: number;
  beforeAll(() => {
    child = spawn(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'sleep.js'), '600000'], { stdio: 'ignore' });
    pid = child.pid as number;
  });
  afterAll(() => {
    child.kill('SIGKILL');
  });

  it('a CPU worker listed under its own command line holds a GPU context', () => {
    const cmd = readCmdline(pid);
    expect(cmd).toContain('sleep.js');
    const f = checkGpuBinding(worker(pid), 'cpu', reading(pid, cmd), 1000, 0);
    expect(f?.class).toBe('unexpected_gpu_context');
    expect(f?.evidence.holdingGpus).toEqual([0]);
  });

  it('a listed pid whose process is another program now is not the worker: no finding', () => {
    // The pid was reused, or is a host pid seen from inside a container's namespace.
    expect(checkGpuBinding(worker(pid), 'cpu', reading(pid, '/usr/lib/xorg/Xorg'), 1000, 0)).toBeNull();
  });

  it('a GPU worker whose pid was reused by another program has fallen back', () => {
    const w = { ...worker(pid), gpus: [0] };
    expect(checkGpuBinding(w, 'gpu', reading(pid, '/usr/lib/xorg/Xorg'), 10_000, 0)?.class).toBe('gpu_fallback');
    expect(checkGpuBinding(w, 'gpu', reading(pid, readCmdline(pid)), 10_000, 0)).toBeNull();
  });

  it('a name nvidia-smi could not give is taken on the pid alone', () => {
    expect(checkGpuBinding(worker(pid), 'cpu', reading(pid, null), 1000, 0)?.class).toBe('unexpected_gpu_context');
  });

  it("the recorded sample's own pids never land on a worker given the same number", () => {
    const xml = fs.readFileSync(path.join(FIXTURES, 'tesla-t4.xml'), 'utf8');
    const { gpus } = parseNvidiaSmiXml(xml);
    const listed = gpus.flatMap((g) => g.processes);
    expect(listed.length).toBeGreaterThan(0);
    for (const p of listed) {
      // The worker was handed this pid; its command line is a Node worker's.
      const probes = { tree: (x: number) => [x], cmdline: () => `${process.execPath} /srv/jobs/optimizer.js` };
      expect(checkGpuBinding(worker(p.pid), 'cpu', gpus, 1000, 0, probes)).toBeNull();
    }
  });
});

describe('sameProcess', () => {
  const p = (name: string | null) => ({ pid: 1, name, usedMiB: null });
  it.each([
    ['/usr/bin/python3 train.py --lr 0.1', '/usr/bin/python3 train.py --lr 0.1', true],
    // NVML cuts a long command line; so does readCmdline.
    ['/opt/app/bin --type=gpu-process --very-long', '/opt/app/bin --type=gpu-process --very-long --and-more', true],
    ['python', '/usr/bin/python train.py', true],
    ['/usr/lib/xorg/Xorg', '/usr/bin/node worker.js', false],
    ['python', null, false],
  ])('%s against %s: %s', (name, cmdline, same) => {
    expect(sameProcess(p(name), cmdline)).toBe(same);
  });
});
