import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileConfig, type CompiledConfig } from '../lib/config/config';
import type { DaemonContext } from '../lib/daemon-runtime';
import { readEvents } from '../lib/event-log';
import { adoptFromDisk } from '../lib/sentry/adopt';
import { lostWhileDown } from '../lib/sentry/lost';
import { pendingResume, recordResume } from '../lib/session/run-resume';
import { currentBootId } from '../lib/process-identity';
import { DAEMON_STATE_FILES } from '../lib/state-files';
import { workerDir } from '../lib/worker/files';
import { daemonContext } from './helpers/daemon-context';
import type { ManualClock } from './helpers/manual-clock';
import { waitFor } from './helpers/tmp';

// What a restart of the whole swarm finds and says: which workers were lost
// while it was down (lost.ts), and when session-state-manager's run.resumed
// is due and what it lists (run-resume.ts). The end-to-end reboot is in
// test/reboot.test.ts.

let dir: string;
let config: CompiledConfig;
let ctx: DaemonContext & { clock: ManualClock };

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarm-resume-'));
  config = compileConfig(
    { name: 'r', stateDir: path.join(dir, 'state'), jobs: { j: { command: ['node'] } } },
    path.join(dir, 'c.json'),
    {},
  );
  fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  ctx = daemonContext('session-state-manager', config);
});
afterEach(() => {
  ctx.db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const header = (daemon: string, pid: number, extra: Record<string, unknown> = {}) => ({
  daemon,
  pid,
  runId: ctx.run.id,
  lifecycle: 'running',
  startedAt: new Date().toISOString(),
  lastTickAt: null,
  tickMs: 1000,
  ticks: 3,
  restarts: 0,
  ...extra,
});
const writeState = (daemon: 'worker-sentry' | 'session-state-manager', body: Record<string, unknown>) =>
  fs.writeFileSync(path.join(config.stateDir, DAEMON_STATE_FILES[daemon]), JSON.stringify(body));
const sentryStarted = (pid: number) =>
  ctx.log.append({ kind: 'daemon.started', target: 'daemon:worker-sentry', data: { pid } }).seq;
/** A pid that was alive a moment ago and is not now. */
const deadPid = async (): Promise<number> => {
  const c = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => c.on('exit', r));
  return c.pid as number;
};

describe('run.resumed', () => {
  it('is recorded at once, listing nothing, when only session-state-manager restarted', () => {
    sentryStarted(process.pid);
    const seen = ctx.log.append({ kind: 'db.checked', target: 'run:x', data: {} }).seq;
    writeState(
      'session-state-manager',
      header('session-state-manager', 4242, { lastSeq: seen, bootId: currentBootId() }),
    );
    writeState('worker-sentry', header('worker-sentry', process.pid));
    const r = pendingResume(ctx, ctx.clock.now());
    expect(r).toMatchObject({ previousPid: 4242, sinceSeq: seen, bootChanged: false });
    expect(recordResume(ctx, r!, 'then', ctx.clock.now())).toBe(true);
    const [e] = readEvents(ctx.db, { kindPrefix: 'run.resumed' });
    expect(e?.data).toMatchObject({ previousPid: 4242, requeued: [], bootChanged: false });
  });

  it('waits for the sentry that started after it, and lists the workers that sentry found lost', async () => {
    const seen = ctx.log.append({ kind: 'db.checked', target: 'run:x', data: {} }).seq;
    writeState(
      'session-state-manager',
      header('session-state-manager', 4242, { lastSeq: seen, bootId: 'an-older-boot' }),
    );
    // The sentry's file is the one its previous instance wrote, before the machine went down.
    const gone = await deadPid();
    writeState('worker-sentry', header('worker-sentry', gone));
    const r = pendingResume(ctx, ctx.clock.now())!;
    expect(r.bootChanged).toBe(true);
    expect(recordResume(ctx, r, 'then', ctx.clock.now())).toBe(false);

    // The new sentry starts, finds two workers lost, then writes its state.
    sentryStarted(process.pid);
    for (const [id, taskId] of [
      ['j-t1', 't1'],
      ['j-0', null],
    ] as const)
      ctx.log.append({ kind: 'worker.lost', target: `worker:${id}`, data: { taskId, attempt: 1 } });
    expect(recordResume(ctx, r, 'then', ctx.clock.now())).toBe(false);
    writeState('worker-sentry', header('worker-sentry', process.pid));
    expect(recordResume(ctx, r, 'then', ctx.clock.now())).toBe(true);
    const [e] = readEvents(ctx.db, { kindPrefix: 'run.resumed' });
    expect(e?.data).toMatchObject({
      bootChanged: true,
      requeued: [
        { workerId: 'j-t1', taskId: 't1', attempt: 1 },
        { workerId: 'j-0', taskId: null, attempt: 1 },
      ],
    });
    expect(e?.data.sentryStarted).toBeUndefined();
  });

  it('is recorded without the sentry once the wait is over, and says so', async () => {
    writeState('session-state-manager', header('session-state-manager', 4242, { lastSeq: 0 }));
    writeState('worker-sentry', header('worker-sentry', await deadPid()));
    const r = pendingResume(ctx, ctx.clock.now())!;
    await ctx.clock.advance(29_000);
    expect(recordResume(ctx, r, 'then', ctx.clock.now())).toBe(false);
    await ctx.clock.advance(1_000);
    expect(recordResume(ctx, r, 'then', ctx.clock.now())).toBe(true);
    const [e] = readEvents(ctx.db, { kindPrefix: 'run.resumed' });
    expect(e?.data).toMatchObject({ sentryStarted: false, requeued: [] });
  });

  it('is not due for a state file of another run, or none', () => {
    expect(pendingResume(ctx, 0)).toBeNull();
    writeState('session-state-manager', { ...header('session-state-manager', 1), runId: 'r-other' });
    expect(pendingResume(ctx, 0)).toBeNull();
  });
});

describe('a worker lost while Swarm was down', () => {
  const folder = (id: string, runId: string, pids: { pid: number; shimPid: number } | null, exited = false) => {
    const d = workerDir(config.stateDir, id);
    fs.mkdirSync(d, { recursive: true });
    const spec = {
      workerId: id,
      job: 'j',
      taskId: id,
      slot: null,
      attempt: 1,
      command: ['node'],
      cwd: dir,
      env: { SWARM_RUN_ID: runId },
      dir: d,
      stopGraceMs: 1000,
      progressFile: path.join(d, 'progress.json'),
      launchedAt: 0,
    };
    fs.writeFileSync(path.join(d, 'spec.json'), JSON.stringify(spec));
    if (pids)
      fs.writeFileSync(
        path.join(d, 'pid.json'),
        JSON.stringify({ ...pids, pgid: pids.pid, startedAt: new Date().toISOString() }),
      );
    if (exited)
      fs.writeFileSync(
        path.join(d, 'exit.json'),
        JSON.stringify({ exitCode: 0, signal: null, endedAt: new Date().toISOString() }),
      );
    return d;
  };

  it('is adopted from its folder, when the state file is gone, and found lost; an ended or running one is not', async () => {
    const [p1, p2, p3] = [await deadPid(), await deadPid(), await deadPid()];
    folder('lost', ctx.run.id, { pid: p1, shimPid: p2 });
    folder('done', ctx.run.id, { pid: p3, shimPid: p3 }, true);
    folder('other-run', 'r-older', { pid: p1, shimPid: p2 });
    folder('never-started', ctx.run.id, null);
    const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
    try {
      await waitFor('child running', () => live.pid !== undefined, 5_000, 20);
      folder('running', ctx.run.id, { pid: live.pid as number, shimPid: live.pid as number });
      const adopted = adoptFromDisk([config.stateDir], () => 'cpu', { runId: ctx.run.id });
      const lost = adopted.filter((w) => lostWhileDown(w, workerDir(config.stateDir, w.id))).map((w) => w.id);
      expect(adopted.map((w) => w.id).sort()).toEqual(['done', 'lost', 'running']);
      expect(lost).toEqual(['lost']);
    } finally {
      live.kill('SIGKILL');
    }
  });
});
