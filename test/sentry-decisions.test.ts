import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { IllegalTransitionError } from '../lib/errors';
import { silentLogger } from '../lib/logger';
import { exitOutcome, loopClass, type ExitFacts } from '../lib/sentry/exit-outcome';
import { setInFlight, transition } from '../lib/worker/lifecycle';
import { progressFileFor } from '../lib/worker/files';
import { IDLE, SentryBodySchema, WorkerRecordSchema, newWorkerRecord, type InFlight } from '../lib/worker/record';
import { killHarnessChildren, sentryHarness } from './helpers/sentry-harness';

// worker-sentry's decisions without PM2, as BullMQ tests its lock manager
// against a narrow context: the pure exit outcome, the worker lifecycle's
// setter, and the sentry itself driven tick by tick on a ManualClock through
// a ProcessManager that starts a real child for each app (the shim's part:
// pid.json, and exit.json written by the test). Real PM2 is in the
// integration tests.

describe('exit outcome', () => {
  const facts = (over: Partial<ExitFacts> = {}): ExitFacts => ({
    intent: null,
    exit: { exitCode: 1, signal: null, stoppedBySwarm: false },
    isTask: true,
    hasVerify: false,
    kill: null,
    slurm: null,
    quarantined: false,
    ...over,
  });
  const ok = { exitCode: 0, signal: null, stoppedBySwarm: false };
  const kill = {
    class: 'runtime_exceeded' as const,
    incidentId: 7,
    actionId: 8,
    pid: 9,
    by: 'hang-guard',
    message: 'ran too long',
  };

  it('what Swarm asked for decides first, whatever the exit', () => {
    expect(exitOutcome(facts({ intent: 'stop' }))).toEqual({ kind: 'stopped' });
    expect(exitOutcome(facts({ intent: 'requeue', exit: ok }))).toEqual({ kind: 'requeued' });
    expect(exitOutcome(facts({ intent: 'restart', kill }))).toEqual({ kind: 'restart-requested' });
    expect(exitOutcome(facts({ intent: 'converge', exit: { exitCode: null, signal: 'SIGTERM' } }))).toEqual({
      kind: 'completed',
      converged: true,
    });
    expect(exitOutcome(facts({ intent: 'converge', hasVerify: true }))).toEqual({ kind: 'verify' });
    expect(exitOutcome(facts({ intent: 'converge', isTask: false }))).toEqual({ kind: 'replica-exited' });
  });

  it("then a stop through PM2, then exit 0, then another daemon's kill, then a failure", () => {
    expect(exitOutcome(facts({ exit: { exitCode: null, signal: 'SIGTERM', stoppedBySwarm: true } }))).toEqual({
      kind: 'stopped-through-pm2',
    });
    expect(exitOutcome(facts({ exit: ok }))).toEqual({ kind: 'completed', converged: false });
    expect(exitOutcome(facts({ exit: ok, hasVerify: true }))).toEqual({ kind: 'verify' });
    expect(exitOutcome(facts({ exit: ok, isTask: false }))).toEqual({ kind: 'replica-exited' });
    expect(exitOutcome(facts({ exit: { exitCode: 0, signal: 'SIGKILL' }, kill }))).toEqual({ kind: 'ended-by', kill });
    expect(exitOutcome(facts())).toEqual({ kind: 'failed' });
    expect(exitOutcome(facts({ exit: { exitCode: 0, signal: 'SIGKILL' } }))).toEqual({ kind: 'failed' });
  });

  it("a slurm job's end state decides before the shim, which calls SLURM's SIGTERM a stop", () => {
    const termed = { exitCode: null, signal: 'SIGTERM', stoppedBySwarm: true };
    const node = { kind: 'evicted', class: 'node_failed' } as const;
    expect(exitOutcome(facts({ exit: termed, slurm: node }))).toEqual({ kind: 'cluster-ended', cls: 'node_failed' });
    expect(exitOutcome(facts({ exit: termed, slurm: { kind: 'limit', class: 'runtime_exceeded' } }))).toEqual({
      kind: 'cluster-ended',
      cls: 'runtime_exceeded',
    });
    expect(exitOutcome(facts({ exit: termed, slurm: { kind: 'cancelled' } }))).toEqual({
      kind: 'cancelled-outside',
    });
    // What Swarm asked for still comes first: its own scancel is no one else's cancel.
    expect(exitOutcome(facts({ intent: 'restart', slurm: { kind: 'cancelled' } }))).toEqual({
      kind: 'restart-requested',
    });
    expect(exitOutcome(facts({ intent: 'stop', slurm: node }))).toEqual({ kind: 'stopped' });
  });

  it('an exit after quarantine ends the process and nothing more: the shim calls the stop its own', () => {
    const termed = { exitCode: null, signal: 'SIGTERM', stoppedBySwarm: true };
    expect(exitOutcome(facts({ exit: termed, quarantined: true }))).toEqual({ kind: 'quarantined' });
    expect(exitOutcome(facts({ quarantined: true, slurm: { kind: 'cancelled' } }))).toEqual({ kind: 'quarantined' });
  });

  it('a crash or OOM that makes three in a row is a crash_loop; other classes stay themselves', () => {
    expect(loopClass('worker_crashed', 1)).toBe('worker_crashed');
    expect(loopClass('worker_crashed', 2)).toBe('crash_loop');
    expect(loopClass('worker_oom', 5)).toBe('crash_loop');
    expect(loopClass('deterministic_failure', 5)).toBe('deterministic_failure');
  });
});

describe('worker lifecycle', () => {
  it('logs each change, stays put without one, and refuses a move the table does not allow', () => {
    const seen: unknown[] = [];
    const logger = { ...silentLogger, info: (o: unknown) => void seen.push(o) } as typeof silentLogger;
    const w = { id: 'w', status: 'starting' as const } as {
      id: string;
      status: 'starting' | 'running' | 'completed' | 'stopped' | 'backoff';
    };
    transition(w, 'running', 'healthy', logger);
    transition(w, 'running', 'again', logger);
    expect(w.status).toBe('running');
    expect(seen).toEqual([{ worker: 'w', from: 'starting', to: 'running', reason: 'healthy' }]);
    transition(w, 'completed', 'exit 0', logger);
    expect(() => transition(w, 'running', 'resurrect', logger)).toThrow(IllegalTransitionError);
    expect(w.status).toBe('completed');
    // A stopped worker restarted by swarmctl goes through backoff.
    const s = { id: 's', status: 'stopped' as const } as { id: string; status: 'stopped' | 'backoff' };
    transition(s, 'backoff', 'restart requested', logger);
    expect(s.status).toBe('backoff');
  });

  it('what is under way is one in-flight value: a verify guard is left only for idle, and an illegal move leaves it as it was', () => {
    const w = { id: 'w', inFlight: IDLE as InFlight };
    setInFlight(w, { kind: 'stopping', why: 'restart', restartAt: 5 }, silentLogger);
    setInFlight(w, IDLE, silentLogger);
    setInFlight(w, { kind: 'verifying' }, silentLogger);
    expect(() => setInFlight(w, { kind: 'stopping', why: 'stop', restartAt: null }, silentLogger)).toThrow(
      IllegalTransitionError,
    );
    expect(() => setInFlight(w, { kind: 'backoff', until: 1 }, silentLogger)).toThrow(IllegalTransitionError);
    expect(w.inFlight).toEqual({ kind: 'verifying' });
    setInFlight(w, IDLE, silentLogger);
    // A new deadline of the same kind is no move.
    setInFlight(w, { kind: 'backoff', until: 1 }, silentLogger);
    setInFlight(w, { kind: 'backoff', until: 2 }, silentLogger);
    expect(w.inFlight).toEqual({ kind: 'backoff', until: 2 });
  });

  it('a record written before the union (five side fields) is read into the in-flight value they meant', () => {
    const { inFlight: _, ...fresh } = newWorkerRecord({ id: 'j-t', job: 'j', taskId: 't', slot: null, lane: 'cpu' });
    const old = (fields: Record<string, unknown>) =>
      WorkerRecordSchema.parse({
        ...fresh,
        backoffUntil: null,
        deniedUntil: null,
        regrant: null,
        stopIntent: null,
        verifying: false,
        ...fields,
      });
    const failure = { cls: 'worker_crashed', incidentId: 4, reason: 'boom', ruleAction: 'restart' };
    expect(old({ status: 'backoff', stopIntent: 'restart', backoffUntil: 900 }).inFlight).toEqual({
      kind: 'stopping',
      why: 'restart',
      restartAt: 900,
    });
    expect(old({ status: 'running', stopIntent: 'converge' }).inFlight).toEqual({
      kind: 'stopping',
      why: 'converge',
      restartAt: null,
    });
    expect(old({ status: 'backoff', regrant: failure, deniedUntil: 700, backoffUntil: 700 }).inFlight).toEqual({
      kind: 'awaiting-grant',
      failure,
      retryAt: 700,
    });
    expect(old({ status: 'running', verifying: true }).inFlight).toEqual({ kind: 'verifying' });
    expect(old({ status: 'backoff', backoffUntil: 300 }).inFlight).toEqual({ kind: 'backoff', until: 300 });
    const running = old({ status: 'running' });
    expect(running.inFlight).toEqual(IDLE);
    expect(running).not.toHaveProperty('stopIntent');
    expect(running).not.toHaveProperty('backoffUntil');
    // The counts of requeued tasks were written as `carried`.
    const body = SentryBodySchema.parse({ workers: [], carried: { t: { attempt: 2, restarts: 1 } } });
    expect(body.requeuedCounts).toEqual({ t: { attempt: 2, restarts: 1 } });
  });
});

afterAll(killHarnessChildren);

describe('worker-sentry, tick by tick', () => {
  it('a task that exits 0 is completed; one that fails restarts after its delay, doubled, then is a crash loop and quarantined when its budget is spent', async () => {
    const { pm, sentry, submit, tick, kinds, clock, launched, exit } = sentryHarness();
    submit('ok');
    submit('bad');
    // util-controller is not there: once it has been gone for two staleness limits, free slots fill.
    await tick(1000);
    await tick();
    expect(pm.started).toEqual(['swarm-worker-j-ok', 'swarm-worker-j-bad']);
    await launched('ok');
    await launched('bad');
    await tick();
    expect(sentry.workers.get('j-ok')?.pid).toBeGreaterThan(1);

    await exit('ok', 0);
    await tick();
    expect(sentry.workers.get('j-ok')?.status).toBe('completed');
    expect(kinds('task:ok')).toContain('task.completed');

    // First failure: restart_worker granted, backoff for restart.delay, relaunched after it and not before.
    await exit('bad', 1);
    await tick(0);
    expect(sentry.workers.get('j-bad')).toMatchObject({
      status: 'backoff',
      inFlight: { kind: 'backoff', until: clock.now() + 1000 },
    });
    expect(kinds('worker:j-bad')).toEqual(
      expect.arrayContaining(['detect.worker_crashed', 'action.proposed', 'action.granted', 'action.started']),
    );
    await tick(999);
    expect(pm.started.filter((n) => n === 'swarm-worker-j-bad')).toHaveLength(1);
    await tick(1);
    await tick();
    expect(pm.started.filter((n) => n === 'swarm-worker-j-bad')).toHaveLength(2);
    expect(sentry.workers.get('j-bad')?.attempt).toBe(2);

    // Second failure, before the restart was verified: that action failed, and the delay doubles.
    await launched('bad');
    await tick();
    await exit('bad', 1);
    await tick(0);
    expect(sentry.workers.get('j-bad')).toMatchObject({
      status: 'backoff',
      inFlight: { kind: 'backoff', until: clock.now() + 2000 },
    });
    expect(kinds('worker:j-bad')).toContain('action.failed');
    await tick(2000);
    await tick();
    await launched('bad');
    await tick();

    // Third in a row: crash_loop, and with the budget of 2 spent, quarantine and one escalation.
    await exit('bad', 1);
    await tick();
    expect(kinds('worker:j-bad')).toContain('detect.crash_loop');
    expect(sentry.workers.get('j-bad')?.status).toBe('quarantined');
    expect(kinds('worker:j-bad').filter((k) => k === 'escalation.raised')).toHaveLength(1);
  }, 60_000);

  it('a denied restart waits, asked again under the same incident only once its pause is over, then runs', async () => {
    const { pm, sentry, submit, tick, kinds, events, clock, launched, exit, pause } = sentryHarness();
    submit('bad');
    await tick(1000);
    await tick();
    await launched('bad');
    await tick();
    pause(true);
    await exit('bad', 1);
    await tick(0);
    const retryAt = clock.now() + 5 * 200;
    expect(sentry.workers.get('j-bad')).toMatchObject({
      status: 'backoff',
      inFlight: { kind: 'awaiting-grant', retryAt, failure: { cls: 'worker_crashed', ruleAction: 'restart' } },
    });
    expect(kinds('worker:j-bad')).toContain('action.denied');
    // Not asked again, nor relaunched, before retryAt, paused or not.
    await tick(500);
    pause(false);
    await tick(499);
    await tick(1);
    expect(kinds('worker:j-bad').filter((k) => k === 'action.proposed')).toHaveLength(1);
    expect(pm.started).toHaveLength(1);
    await tick(0);
    const proposals = events('worker:j-bad').filter((e) => e.kind === 'action.proposed');
    expect(proposals).toHaveLength(2);
    expect(proposals[1]?.data.incidentId).toBe(proposals[0]?.data.incidentId);
    expect(sentry.workers.get('j-bad')).toMatchObject({
      status: 'backoff',
      inFlight: { kind: 'backoff', until: clock.now() + 1000 },
    });
    await tick(1000);
    await tick();
    expect(pm.started).toHaveLength(2);
    expect(sentry.workers.get('j-bad')?.inFlight).toEqual(IDLE);
  }, 60_000);
  it("a worker's progress is timed when it is seen, not when a tick that waited seconds on another worker's grant began", async () => {
    const { ctx, sentry, submit, tick, kinds, clock, launched, exit, slowGrants } = sentryHarness({
      jobExtra: { progress: { staleAfter: '1s' } },
    });
    submit('a');
    submit('b');
    await tick(1000);
    await tick();
    await launched('a');
    await launched('b');
    await tick();
    const job = ctx.config.jobs.j;
    const b = sentry.workers.get('j-b');
    if (!job || !b) throw new Error('worker j-b not launched');
    const progress = (n: number) =>
      fs.writeFileSync(progressFileFor(ctx.config, job, b), JSON.stringify({ updatedAt: `p${n}`, iteration: n }));
    progress(1);
    await tick();
    // a crashes; its restart's grant takes 900 ms. b shows progress meanwhile, seen after that wait.
    await exit('a', 1);
    progress(2);
    slowGrants(900);
    const before = clock.now();
    await tick(0);
    slowGrants(0);
    expect(kinds('worker:j-a')).toContain('action.granted');
    expect(clock.now()).toBe(before + 900);
    expect(sentry.workers.get('j-b')?.lastProgressAt).toBe(before + 900);
    // 1.1 s after the tick began but 200 ms after b's progress was seen: b is not stale.
    clock.t += 200;
    await tick();
    expect(kinds('worker:j-b')).not.toContain('detect.progress_stale');
    expect(sentry.workers.get('j-b')?.status).toBe('running');
  }, 60_000);
});
