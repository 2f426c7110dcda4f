import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../lib/clock';
import { killProcessGroup } from '../lib/kill';
import { isAlive } from '../lib/proc';
import { currentBootId, groupMismatch, identityOf, vouchForWorker } from '../lib/process-identity';
import { tmpDir, waitFor } from './helpers/tmp';

// Swarm signals only what the kernel confirms it started: real processes,
// real signals. A "shim" here is a node process started with SWARM_WORKER_ID
// in its environment that rewrites its own title, as PM2 does, and starts a
// detached child, as lib/worker-shim.js does.

const started: ChildProcess[] = [];
afterEach(() => {
  for (const p of started.splice(0)) {
    try {
      if (p.pid) process.kill(-p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    p.kill('SIGKILL');
  }
});

/** A process that keeps running until the test ends it, in its own group when detached. */
function sleeper(detached = true): ChildProcess {
  const p = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached, stdio: 'ignore' });
  started.push(p);
  return p;
}

/** A shim-like parent for `workerId`: it starts a detached child and writes its pid to a file. */
async function shimWithChild(workerId: string): Promise<{ shim: ChildProcess; childPid: number }> {
  const out = path.join(tmpDir(), 'child.pid');
  const code = `process.title = 'node worker-shim.js'; const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' }); require('fs').writeFileSync(${JSON.stringify(out)}, String(c.pid)); setInterval(() => {}, 1000);`;
  const shim = spawn(process.execPath, ['-e', code], {
    stdio: 'ignore',
    env: { ...process.env, SWARM_WORKER_ID: workerId },
  });
  started.push(shim);
  const childPid = await waitFor('the child pid', () =>
    fs.existsSync(out) ? Number(fs.readFileSync(out, 'utf8')) : 0,
  );
  started.push({ pid: childPid, kill: () => true } as unknown as ChildProcess);
  return { shim, childPid };
}

describe('process identity', () => {
  it('vouches for the detached child of the shim started for this worker, and records its start time and boot', async () => {
    const { shim, childPid } = await shimWithChild('job-a');
    const v = vouchForWorker({ pid: childPid, pgid: childPid, shimPid: shim.pid as number }, 'job-a');
    expect(v).toMatchObject({ ok: true, worker: { pid: childPid, bootId: currentBootId() }, shim: { pid: shim.pid } });
    if (v.ok) expect(groupMismatch(v.worker)).toBeNull();
  });

  it("refuses what a worker could write in pid.json: pid or pgid 0 or 1, pgid not pid, a process that is not the shim's child", async () => {
    const { shim, childPid } = await shimWithChild('job-a');
    const other = sleeper();
    const shimPid = shim.pid as number;
    for (const forged of [
      { pid: 1, pgid: 1 },
      { pid: childPid, pgid: 0 },
      { pid: childPid, pgid: 1 },
      { pid: other.pid as number, pgid: other.pid as number },
    ]) {
      expect(vouchForWorker({ ...forged, shimPid }, 'job-a'), JSON.stringify(forged)).toMatchObject({
        ok: false,
        gone: false,
      });
    }
    // The right child, but a "shim" started for another worker.
    expect(vouchForWorker({ pid: childPid, pgid: childPid, shimPid }, 'job-b')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not the shim/),
    });
  });

  it('a recorded identity stops matching when the pid is another process, after a reboot, or off its group', () => {
    const p = sleeper();
    const id = identityOf(p.pid as number);
    expect(id).not.toBeNull();
    if (!id) return;
    expect(groupMismatch(id)).toBeNull();
    expect(groupMismatch({ ...id, startTicks: id.startTicks - 1 })).toMatch(/is now another process/);
    expect(groupMismatch({ ...id, bootId: '00000000-0000-0000-0000-000000000000' })).toMatch(/before a reboot/);
    expect(groupMismatch({ ...id, pid: 1 })).toMatch(/never one Swarm starts/);
    const notLeader = sleeper(false);
    const nl = identityOf(notLeader.pid as number);
    expect(nl && groupMismatch(nl)).toMatch(/does not lead its own process group/);
  });

  it('killProcessGroup signals nothing for an identity that does not match, and ends the group for one that does', async () => {
    const victim = sleeper();
    const id = identityOf(victim.pid as number);
    if (!id) throw new Error('no identity');
    const refused = await killProcessGroup({ ...id, startTicks: id.startTicks + 7 }, 200, systemClock);
    expect(refused).toMatchObject({ gone: false, refused: expect.stringMatching(/another process/) });
    expect(isAlive(victim.pid)).toBe(true);
    const done = await killProcessGroup(id, 2000, systemClock);
    expect(done).toMatchObject({ gone: true, refused: null });
    expect(isAlive(victim.pid)).toBe(false);
  });
});
