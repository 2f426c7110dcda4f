import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../lib/proc';
import { optimizerJob, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// A worker can write its own folder: pid.json included. Left there as after
// a reboot, or forged, it names a process group Swarm never started. A real
// swarm adopts that folder and must signal nothing: the "victim" here is a
// real process group of this test's, and it must survive.

let victim: ChildProcess;
const swarm = new TestSwarm({
  name: 'hostile',
  tick: '200ms',
  lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'slots' } },
  jobs: { opt: optimizerJob(['--trials', '4000']) },
});

beforeAll(() => {
  victim = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
  const dead = spawn(process.execPath, ['-e', '0']);
  const deadPid = dead.pid as number;
  // The folder of a worker "left running" by an earlier swarm: its shim gone, its pid now someone else's.
  const dir = path.join(swarm.stateDir, 'workers', 'opt-t1');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(
    path.join(dir, 'spec.json'),
    JSON.stringify({
      workerId: 'opt-t1',
      job: 'opt',
      taskId: 't1',
      slot: null,
      attempt: 1,
      command: ['node', '-e', '0'],
      cwd: swarm.dir,
      env: {},
      dir,
      stopGraceMs: 1000,
      progressFile: path.join(dir, 'progress.json'),
      launchedAt: Date.now() - 60_000,
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'pid.json'),
    JSON.stringify({ pid: victim.pid, pgid: victim.pid, shimPid: deadPid, startedAt: new Date().toISOString() }),
  );
  swarm.up();
}, 60_000);

afterAll(() => {
  swarm.teardown();
  try {
    process.kill(-(victim.pid as number), 'SIGKILL');
  } catch {
    // already gone
  }
});

describe('a pid.json that names a process Swarm did not start', () => {
  it('is never signalled: the refusal is recorded, and the process lives on', async () => {
    const refused = await swarm.waitEvent('worker.signal_refused', 'worker:opt-t1');
    expect(refused.data).toMatchObject({ pid: victim.pid, reason: expect.any(String) });
    // The record is settled as an exit of the lost worker, without a signal.
    await swarm.waitEvent('worker.exited', 'worker:opt-t1', (e) =>
      String(e.data.error ?? '').includes('not signalled'),
    );
    await waitFor(
      'a few more sentry ticks',
      () => (swarm.query().daemons.find((d) => d.name === 'worker-sentry')?.tickAgeMs ?? 1e9) < 1000,
    );
    expect(isAlive(victim.pid)).toBe(true);
  });
});
