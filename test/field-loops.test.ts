import fs from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPTIMIZER, optimizerJob, ROOT, TestSwarm } from './helpers/swarm';

// How optimization loops go wrong in the field, each with a real process:
// "done" without passing validation, a primary path that fails while a
// fallback works, a plateau, the same failure over and over, and a lock
// held by a stale worker.

const FIX = path.join(ROOT, 'test', 'fixtures');
const restart = { delay: '100ms', maxDelay: '400ms', budget: 10, window: '1h' };

const swarm = new TestSwarm({
  name: 'field',
  tick: '200ms',
  consensus: { maxConcurrentActions: 16, breaker: { failures: 100 } },
  lanes: { cpu: { kind: 'cpu', slots: 10, fill: 'slots' } },
  jobs: {
    checked: optimizerJob(['--trials', '3'], {
      restart,
      verify: { command: ['node', path.join(FIX, 'guard.js')], timeout: '10s' },
    }),
    tiered: {
      command: ['node', path.join(FIX, 'say-and-exit.js'), "ModuleNotFoundError: No module named 'fastlib'"],
      restart,
      fallbacks: [
        {
          command: ['node', OPTIMIZER],
          args: ['--task', '${taskId}', '--trials', '3', '--trial-ms', '100'],
          on: ['deterministic_failure'],
        },
      ],
    },
    flat: optimizerJob(['--trials', '100000', '--flat'], {
      restart,
      plateau: { direction: 'max', minDelta: 0.01, patience: 4, action: 'rotate' },
      strategies: [['--trials', '8']],
    }),
    // Its first metric (about 10) is within 0.5 of the target 9 on the max side: it converges at once.
    tuned: optimizerJob(['--trials', '100000'], { restart, plateau: { direction: 'max', target: 9, tolerance: 0.5 } }),
    stuck: {
      command: ['node', path.join(FIX, 'say-and-exit.js'), 'Error: upstream answered 503'],
      restart,
      stagnationAfter: 3,
    },
    holder: optimizerJob(['--trials', '100000'], { restart, progress: { staleAfter: '60s' } }),
    locked: { command: ['node', path.join(FIX, 'lock-victim.js'), path.join('/tmp', 'will-be-replaced')], restart },
  },
  queue: [
    { job: 'checked', id: 'c1' },
    { job: 'tiered', id: 't1' },
    { job: 'flat', id: 'p1' },
    { job: 'tuned', id: 'v1' },
    { job: 'stuck', id: 's1' },
    { job: 'holder', id: 'h1' },
  ],
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

describe('loops from the field', () => {
  it('verify: a task that exits 0 but fails its guard is validation_failed, retried, then completed', async () => {
    const failed = await swarm.waitEvent('task.failed', 'task:c1');
    expect(failed.data.class).toBe('validation_failed');
    expect((failed.data.verify as { output: string; exitCode: number }).output).toMatch(/expected 5/);
    expect((failed.data.verify as { exitCode: number }).exitCode).toBe(3);
    await swarm.waitEvent('detect.validation_failed', 'worker:checked-c1');
    const done = await swarm.waitEvent('task.completed', 'task:c1');
    expect((done.data.verify as { output: string }).output).toMatch(/validation: ok/);
    expect(done.data.attempt).toBe(2);
  });

  it('fallbacks: the primary fails deterministically, the next tier runs and completes', async () => {
    await swarm.waitEvent('detect.deterministic_failure', 'worker:tiered-t1');
    const tier1 = await swarm.waitEvent('worker.launched', 'worker:tiered-t1', (e) => e.data.tier === 1);
    expect((tier1.data.argv as string[]).join(' ')).toContain('optimizer.js');
    await swarm.waitEvent('task.completed', 'task:t1');
    expect(swarm.events({ kind: 'escalation.raised', target: 'worker:tiered-t1' })).toHaveLength(0);
  });

  it('convergence: the metric reaches plateau.target, the worker is ended and the task completes (task.converged)', async () => {
    const c = await swarm.waitEvent('task.converged', 'task:v1');
    expect(c.data).toMatchObject({ workerId: 'tuned-v1', target: 9, tolerance: 0.5, metric: expect.any(Number) });
    expect(Number(c.data.metric)).toBeGreaterThanOrEqual(8.5);
    const done = await swarm.waitEvent('task.completed', 'task:v1');
    expect(done.seq).toBeGreaterThan(c.seq);
    expect(done.data).toMatchObject({ metric: expect.any(Number) });
    expect(swarm.events({ kind: 'detect', target: 'worker:tuned-v1' })).toHaveLength(0);
    expect(swarm.query().workers.find((w) => w.id === 'tuned-v1')?.status).toBe('completed');
  });

  it('plateau: the metric stops improving, the next strategy runs from the checkpoint', async () => {
    const d = await swarm.waitEvent('detect.plateau', 'worker:flat-p1');
    expect(d.data.updates).toBeGreaterThanOrEqual(4);
    const relaunch = await swarm.waitEvent('worker.launched', 'worker:flat-p1', (e) => e.data.strategy === 0);
    expect((relaunch.data.argv as string[]).slice(-2)).toEqual(['--trials', '8']);
    await swarm.waitEvent('task.completed', 'task:p1');
    const log = fs.readFileSync(path.join(swarm.stateDir, 'workers', 'flat-p1', 'output.log'), 'utf8');
    expect(log).toMatch(/resuming p1 from trial [1-9]/);
  });

  it('stagnation: the same failure class again and again is escalated with the evidence', async () => {
    const d = await swarm.waitEvent('detect.stagnation', 'worker:stuck-s1');
    expect(d.data.count).toBe(3);
    expect(JSON.stringify(d.data.lastEvidence)).toBeTruthy();
    await swarm.waitEvent('escalation.raised', 'worker:stuck-s1', (e) => /stagnation/.test(String(e.data.reason)));
    expect(swarm.query().workers.find((w) => w.id === 'stuck-s1')?.status).toBe('quarantined');
  });

  it('lock_conflict: the holder is a stale worker of ours, so it is restarted and the lock freed', async () => {
    const pid = await swarm.workerPid('holder-h1', 1);
    const pidFile = path.join(swarm.dir, 'holder.pid');
    fs.writeFileSync(pidFile, String(pid));
    const cfg = JSON.parse(fs.readFileSync(swarm.configFile, 'utf8')) as {
      jobs: Record<string, { command: string[] }>;
    };
    (cfg.jobs.locked as { command: string[] }).command[2] = pidFile;
    fs.writeFileSync(swarm.configFile, JSON.stringify(cfg));
    swarm.pm2('restart', 'worker-sentry');
    process.kill(pid, 'SIGSTOP');
    expect(swarm.ctl('submit', 'locked', '--id', 'l1').status).toBe(0);
    const d = await swarm.waitEvent('detect.lock_conflict', 'worker:locked-l1');
    expect(d.data).toMatchObject({ holderPid: pid, holderIsOurs: true, holderWorker: 'holder-h1' });
    expect(String(d.data.holderCommand)).toContain('optimizer.js');
    expect(String(d.data.message)).toMatch(
      new RegExp(`the lock is held by pid ${pid} \\(.*optimizer\\.js.*\\), worker holder-h1 of this swarm`),
    );
    const freed = await swarm.waitEvent(
      'action.verified',
      'worker:holder-h1',
      (e) => e.data.type === 'restart_worker',
      45_000,
    );
    expect(freed.source).toBe('worker-sentry');
    expect(String(swarm.events({ kind: 'action.proposed', target: 'worker:holder-h1' }).at(-1)?.data.reason)).toMatch(
      /holds the lock that blocks locked-l1/,
    );
  });

  it('lock_conflict with an outside holder: its pid and command line are in the detection, the escalation and the next steps', async () => {
    const outsider = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', 'outside-lock-holder'], {
      stdio: 'ignore',
    });
    try {
      // The locked job reads the holder's pid from this file (the test above pointed it here).
      fs.writeFileSync(path.join(swarm.dir, 'holder.pid'), String(outsider.pid));
      expect(swarm.ctl('submit', 'locked', '--id', 'l2').status).toBe(0);
      const d = await swarm.waitEvent('detect.lock_conflict', 'worker:locked-l2');
      expect(d.data).toMatchObject({ holderPid: outsider.pid, holderIsOurs: false, holderWorker: null });
      expect(String(d.data.holderCommand)).toContain('outside-lock-holder');
      const esc = await swarm.waitEvent('escalation.raised', 'worker:locked-l2', () => true, 60_000);
      expect(String(esc.data.reason)).toMatch(
        new RegExp(`pid ${outsider.pid} \\(.*outside-lock-holder\\), not a worker of this swarm`),
      );
      expect(swarm.query().nextSteps.join('\n')).toMatch(
        new RegExp(`worker:locked-l2 needs a person: .*pid ${outsider.pid} .*not a worker of this swarm`),
      );
      // Nothing of ours was restarted for it.
      expect(
        swarm.events({ kind: 'action.proposed' }).filter((e) => String(e.data.reason).includes('blocks locked-l2')),
      ).toHaveLength(0);
    } finally {
      outsider.kill('SIGKILL');
    }
  }, 90_000);
});
