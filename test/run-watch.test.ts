import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TestSwarm } from './helpers/swarm';
import { skipReason } from './helpers/system-packages';
import { waitFor } from './helpers/tmp';

// The run as a whole sitting still, on a machine made busy with stress-ng:
// util-controller rightly holds its utilization lane, so queued work waits
// with no worker live (no_workers), and workers that say nothing leave the
// run without progress (run_stalled). session-state-manager launches past
// the gate, escalates when that does not help, and resolves its escalation
// once the run moves.

const skip = skipReason(['stress-ng']);

const swarm = new TestSwarm({
  name: 'stall',
  tick: '250ms',
  // Far below what stress-ng makes of the machine: the lane is held for the whole test.
  utilization: { cpuTarget: 10, window: '1s', starveAfter: '1h' },
  run: { noWorkersAfter: '3s', stallAfter: '10s' },
  lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'utilization' } },
  jobs: {
    // Silent until the go file appears: no progress, no output.
    quiet: {
      command: [
        process.execPath,
        '-e',
        "const fs = require('fs'); const t = setInterval(() => { if (fs.existsSync(process.argv[1])) { clearInterval(t); console.log('done'); } }, 100);",
      ],
      args: ['${taskId}.go'],
      restart: { delay: '200ms' },
    },
  },
});

let stress: ChildProcess | null = null;
let runTarget = '';

beforeAll(async () => {
  if (skip) return;
  // Its own process group, so the teardown ends stress-ng's workers with it. Every CPU at 60%: far over
  // the target on any machine, and the tests running beside this one keep the rest.
  stress = spawn('stress-ng', ['--cpu', '0', '--cpu-load', '60', '--timeout', '600s', '--quiet'], {
    stdio: 'ignore',
    detached: true,
  });
  swarm.up();
  await waitFor('the machine busy under stress-ng', () => (swarm.query().utilization.cpuPct ?? 0) >= 40, 60_000, 250);
  runTarget = `run:${swarm.query().run?.id}`;
}, 120_000);

afterAll(() => {
  if (stress?.pid) {
    try {
      process.kill(-stress.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  swarm.teardown();
});

describe('run-level stalls under stress-ng', () => {
  beforeEach((ctx) => ctx.skip(skip !== null, skip ?? undefined));

  it('no_workers: queued work with no worker live is detected, and one task is launched past the utilization gate', async () => {
    expect(swarm.ctl('submit', 'quiet', '--id', 'a').status).toBe(0);
    expect(swarm.ctl('submit', 'quiet', '--id', 'b').status).toBe(0);
    const d = await swarm.waitEvent('detect.no_workers', runTarget);
    expect(d.source).toBe('session-state-manager');
    expect(d.data).toMatchObject({ class: 'no_workers', queued: 2, liveWorkers: [], forceLane: 'cpu' });
    expect(Number(d.data.quietForMs)).toBeGreaterThanOrEqual(3000);
    const launch = await swarm.waitEvent(
      'action.proposed',
      'lane:cpu',
      (e) => e.data.forced === true && e.data.incidentId === d.seq,
    );
    expect(launch.source).toBe('session-state-manager');
    const started = await swarm.waitEvent('task.started', 'task:a');
    expect(started.data.why).toBe('forced');
    await swarm.waitEvent('action.verified', 'lane:cpu', (e) => e.actionId === launch.seq, 60_000);
    // One, not the lane's worth: b still waits behind the gate, which stress-ng keeps shut.
    const q = swarm.query();
    expect(q.tasks).toMatchObject({ running: 1, queued: 1 });
    expect(swarm.events({ kind: 'task.started' }).filter((e) => e.data.why === 'fill')).toHaveLength(0);
    expect(swarm.events({ kind: 'escalation.raised', target: runTarget })).toHaveLength(0);
  }, 90_000);

  it('run_stalled: nothing progresses, so the next task is launched past the gate; when that does not help a person is called, and the escalation resolves once work moves', async () => {
    const d = await swarm.waitEvent('detect.run_stalled', runTarget, () => true, 60_000);
    expect(d.data).toMatchObject({
      class: 'run_stalled',
      queued: 1,
      running: 1,
      liveWorkers: ['quiet-a'],
      forceLane: 'cpu',
    });
    const started = await swarm.waitEvent('task.started', 'task:b');
    expect(started.data.why).toBe('forced');
    const esc = await swarm.waitEvent('escalation.raised', runTarget, (e) => e.data.class === 'run_stalled', 60_000);
    expect(String(esc.data.reason)).toMatch(
      /no task progressed or completed for .*launching past the utilization gate did not move it/,
    );
    expect(esc.data.incidentId).toBe(d.seq);
    const open = swarm.query();
    expect(open.escalations.find((e) => e.id === esc.seq)?.status).toBe('open');
    expect(open.nextSteps.join('\n')).toMatch(/no task progressed/);
    // Mid-run, the report is built from the event log as of now.
    const mid = JSON.parse(swarm.ctl('report', '--json').stdout) as {
      status: string;
      remains: { task: string; status: string }[];
      escalations: { id: number; status: string }[];
    };
    expect(mid.status).toBe('running');
    expect(mid.remains.map((r) => [r.task, r.status])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
    ]);
    expect(mid.escalations).toContainEqual(expect.objectContaining({ id: esc.seq, status: 'open' }));
    // Work moves: both print and complete.
    for (const id of ['a', 'b']) fs.writeFileSync(path.join(swarm.dir, `${id}.go`), '');
    const resolved = await swarm.waitEvent(
      'escalation.resolved',
      runTarget,
      (e) => e.data.escalationId === esc.seq,
      60_000,
    );
    expect(resolved.data.by).toBe('session-state-manager');
    const done = await swarm.waitEvent('run.completed', runTarget, () => true, 60_000);
    // The end-of-run report counts what happened by class and says how the escalation ended.
    const md = fs.readFileSync(String(done.data.report), 'utf8');
    expect(md).toMatch(/\| no_workers \| 1 \| 1 \| 0 \| 0 \|/);
    expect(md).toMatch(/\| run_stalled \| 1 \| 1 \| 0 \| 1 \|/);
    expect(md).toContain(`- #${esc.seq} ${runTarget}, raised`);
    expect(md).toMatch(/Resolved .* by session-state-manager\./);
    expect(md).toMatch(/2 completed, 0 failed/);
  }, 150_000);
});
