import path from 'node:path';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optimizerJob, ROOT, TestSwarm } from './helpers/swarm';

// One real swarm under a real PM2, one misbehaving task per failure class.
// Every detection below is a real process failing in a real way.

const restart = { delay: '200ms', maxDelay: '2s', budget: 5, window: '10m', healthyAfter: '1m' };
const SAY = path.join(ROOT, 'test', 'fixtures', 'say-and-exit.js');
const LEARNER = path.join(ROOT, 'test', 'fixtures', 'learner.js');
const SECRET = 'tok-7f"3a9c\\1e';

const swarm = new TestSwarm({
  name: 'detections',
  tick: '200ms',
  // Eleven failing workers at once: the concurrency limit is tested in consensus.test.ts, not here.
  consensus: { maxConcurrentActions: 16, breaker: { failures: 100 } },
  lanes: { cpu: { kind: 'cpu', slots: 16, fill: 'slots' } },
  jobs: {
    crasher: optimizerJob(['--trials', '6', '--crash-at', '2'], { restart, progress: { staleAfter: '20s' } }),
    segv: optimizerJob(['--trials', '400', '--segv-at', '2'], { restart }),
    victim: optimizerJob(['--trials', '4000'], { restart, progress: { staleAfter: '20s' } }),
    // A startup gate starts the progress clock at the marker, so a relaunch that is slow to start on a busy
    // machine is not stale before it has begun.
    frozen: optimizerJob(['--trials', '4000'], {
      restart,
      progress: { staleAfter: '2s' },
      startup: { marker: 'optimizer ready', within: '30s' },
    }),
    leaker: optimizerJob(['--trials', '4000', '--leak-mb', '25'], { restart, memoryLimit: '200M' }),
    broken: optimizerJob(['--syntax-error', '--fault-attempts', '0'], { restart }),
    looper: optimizerJob(['--crash-at', '1', '--fault-attempts', '0'], {
      restart: { ...restart, delay: '100ms', budget: 3 },
    }),
    slowstart: optimizerJob(['--trials', '4000', '--slow-start-ms', '60000'], {
      restart,
      startup: { marker: 'optimizer ready', within: '1500ms' },
    }),
    quiet: optimizerJob(['--trials', '4000', '--hang-at', '3'], { restart, logStallAfter: '1500ms' }),
    noartifact: optimizerJob(['--trials', '4000'], {
      restart,
      artifacts: [{ path: 'never/${taskId}.json', within: '1500ms' }],
    }),
    // A secret with a quote and a backslash, which redaction of JSON text missed; and short values named
    // like secrets, which it used to blank out of the evidence, breaking it.
    cuda: {
      command: ['node', SAY, 'RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB'],
      env: { API_TOKEN: SECRET, TOKENIZERS_PARALLELISM: 'false', MAX_TOKENS: '4096' },
      restart,
      failures: [{ match: 'CUDA out of memory', class: 'worker_oom', action: 'quarantine' }],
    },
    learner: { command: ['node', LEARNER], env: { API_TOKEN: SECRET }, restart },
  },
  queue: [
    'crasher',
    'segv',
    'victim',
    'frozen',
    'leaker',
    'broken',
    'looper',
    'slowstart',
    'quiet',
    'noartifact',
    'cuda',
    'learner',
  ].map((job) => ({ job, id: job })),
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

const detect = (cls: string, id: string) => swarm.waitEvent(`detect.${cls}`, `worker:${id}-${id}`);

async function expectVerifiedRestart(id: string, incidentSeq: number) {
  const verified = await swarm.waitEvent(
    'action.verified',
    `worker:${id}-${id}`,
    (e) => e.data.incidentId === incidentSeq,
  );
  expect(verified.data.type).toBe('restart_worker');
  const chain = swarm
    .events({ target: `worker:${id}-${id}` })
    .filter((e) => e.actionId === verified.actionId)
    .map((e) => e.kind);
  expect(chain).toEqual(['action.granted', 'action.started', 'action.verified']);
}

describe('worker-sentry detections against real processes', () => {
  it('worker_crashed: exit 1, restarted from the same checkpoint, then task.completed', async () => {
    const d = await detect('worker_crashed', 'crasher');
    expect(d.data).toMatchObject({ class: 'worker_crashed', exitCode: 1, signal: null });
    await expectVerifiedRestart('crasher', d.seq);
    await swarm.waitEvent('task.completed', 'task:crasher');
    const log = fs.readFileSync(path.join(swarm.stateDir, 'workers', 'crasher-crasher', 'output.log'), 'utf8');
    expect(log).toMatch(/resuming crasher from trial 1 \(attempt 2\)/);
  });

  it('attempt 2 reads what attempt 1 learned from SWARM_LAST_FAILURE: the class, the exit, what was tried; no secret in it', async () => {
    await swarm.waitEvent('task.completed', 'task:learner', () => true, 60_000);
    const log = fs.readFileSync(path.join(swarm.stateDir, 'workers', 'learner-learner', 'output.log'), 'utf8');
    expect(log).toMatch(/attempt 2 learned: class=worker_crashed exit=3 attempt=1 tried=\{"worker_crashed":1\}/);
    const note = fs.readFileSync(
      path.join(swarm.stateDir, 'checkpoints', 'learner-learner', 'last-failure.json'),
      'utf8',
    );
    expect(note).toMatch(/first attempt failing; token=\[redacted\]/);
    expect(note).not.toContain(SECRET);
    expect(JSON.parse(note)).toMatchObject({
      class: 'worker_crashed',
      exitCode: 3,
      signal: null,
      stagnation: null,
      tried: { worker_crashed: 1 },
    });
  });

  it('worker_crashed: SIGSEGV is reported as the signal, not as exit 0', async () => {
    const d = await detect('worker_crashed', 'segv');
    expect(d.data).toMatchObject({ exitCode: null, signal: 'SIGSEGV' });
    await expectVerifiedRestart('segv', d.seq);
  });

  it('worker_crashed: kill -9 from outside is SIGKILL', async () => {
    const pid = await swarm.workerPid('victim-victim', 1);
    process.kill(pid, 'SIGKILL');
    const d = await detect('worker_crashed', 'victim');
    expect(d.data).toMatchObject({ exitCode: null, signal: 'SIGKILL', pid });
    await expectVerifiedRestart('victim', d.seq);
    const w = swarm.query().workers.find((x) => x.id === 'victim-victim');
    expect(w?.pid).not.toBe(pid);
  });

  it('progress_stale: a SIGSTOPped worker is detected, ended and restarted', async () => {
    const pid = await swarm.workerPid('frozen-frozen', 1);
    process.kill(pid, 'SIGSTOP');
    const d = await detect('progress_stale', 'frozen');
    expect(d.data.staleAfterMs).toBe(2000);
    await expectVerifiedRestart('frozen', d.seq);
    const exited = swarm.events({ kind: 'worker.exited', target: 'worker:frozen-frozen' })[0];
    expect(exited?.data).toMatchObject({ pid, signal: 'SIGTERM', requestedBy: 'swarm' });
  });

  it('worker_oom: memory over memoryLimit', async () => {
    const d = await detect('worker_oom', 'leaker');
    expect(Number(d.data.memBytes)).toBeGreaterThan(200 * 1048576);
    await swarm.waitEvent('action.verified', 'worker:leaker-leaker', (e) => e.data.incidentId === d.seq);
  });

  it('deterministic_failure: a SyntaxError is quarantined at once, never restarted', async () => {
    const d = await detect('deterministic_failure', 'broken');
    expect(d.data.pattern).toBe('SyntaxError');
    await swarm.waitEvent('escalation.raised', 'worker:broken-broken');
    expect(swarm.events({ kind: 'worker.launched', target: 'worker:broken-broken' })).toHaveLength(1);
    expect(swarm.events({ kind: 'action.proposed', target: 'worker:broken-broken' }).map((e) => e.data.type)).toEqual([
      'quarantine',
    ]);
  });

  it('crash_loop: then the budget is spent, quarantine and one escalation; ack lets it run again', async () => {
    await detect('crash_loop', 'looper');
    const esc = await swarm.waitEvent('escalation.raised', 'worker:looper-looper');
    expect(String(esc.data.reason)).toMatch(/budget spent/);
    const launches = swarm.events({ kind: 'worker.launched', target: 'worker:looper-looper' }).length;
    expect(launches).toBe(4);
    const q = swarm.query();
    expect(q.workers.find((w) => w.id === 'looper-looper')?.status).toBe('quarantined');
    expect(q.escalations.find((e) => e.id === esc.seq)?.status).toBe('open');
    const ack = swarm.ctl('ack', String(esc.seq), '--json');
    expect(ack.status).toBe(0);
    await swarm.waitEvent('worker.launched', 'worker:looper-looper', (e) => e.seq > esc.seq);
  });

  it('startup_gate_missed: the marker never appeared within the gate', async () => {
    const d = await detect('startup_gate_missed', 'slowstart');
    expect(d.data.marker).toBe('optimizer ready');
  });

  it('log_stalled: the log stopped growing', async () => {
    const d = await detect('log_stalled', 'quiet');
    expect(d.data.logStallAfterMs).toBe(1500);
  });

  it('artifact_missing: the promised file never appeared', async () => {
    const d = await detect('artifact_missing', 'noartifact');
    expect(String(d.data.path)).toContain('never/noartifact.json');
  });

  it('user failure rules come first', async () => {
    const d = await detect('worker_oom', 'cuda');
    expect(d.data.rule).toBe('CUDA out of memory');
    expect(String(d.data.matchedLine)).toContain('token=[redacted]');
    await swarm.waitEvent('escalation.raised', 'worker:cuda-cuda');
    // The secret printed by the worker never reaches an event or the projected log.
    for (const fragment of ['7f"3a9c', '7f\\"3a9c', '3a9c\\1e', '3a9c\\\\1e']) {
      expect(JSON.stringify(swarm.events().map((e) => e.data))).not.toContain(fragment);
      expect(fs.readFileSync(path.join(swarm.stateDir, 'workflow_events.log'), 'utf8')).not.toContain(fragment);
    }
  });

  it('the log stays intact through all of it', () => {
    const r = swarm.ctl('verify-log', '--json');
    // What verify-log found is what a failure needs.
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(JSON.parse(r.stdout).ok).toBe(true);
  });
});
