import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optimizerJob, PM2, SWARMCTL, TestSwarm } from './helpers/swarm';
import { startSlurm, type TestSlurm } from './helpers/slurm-cluster';
import { skipReason } from './helpers/system-packages';
import { waitFor } from './helpers/tmp';
import type { StoredEvent } from '../lib/event-kinds';

// Workers on a slurm lane, supervised against a real one-node SLURM cluster
// (slurmctld, slurmd and munge from Debian, started for this file): each
// worker is a batch job, and each way SLURM work is lost is seen, classified
// and remedied from the events and query, as under PM2.

const notRoot = process.getuid?.() !== 0 ? 'needs root: slurmd runs each job as its user' : null;
const skip = notRoot ?? skipReason(['slurm']);

let cluster: TestSlurm | null = null;
let swarm: TestSwarm | null = null;
let shared = '';

const long = (extra: Record<string, unknown> = {}) =>
  optimizerJob(['--trials', '100000000', '--trial-ms', '200'], {
    lane: 'hpc',
    progress: { staleAfter: '8s' },
    restart: { delay: '200ms' },
    ...extra,
  });

beforeAll(async () => {
  if (skip) return;
  cluster = await startSlurm();
  swarm = new TestSwarm(
    {
      name: 'slurm',
      tick: '250ms',
      lanes: {
        hpc: { kind: 'slurm', slots: 8, sharedDir: 'shared', poll: '300ms', partition: cluster.partition },
        held: { kind: 'slurm', slots: 1, sharedDir: 'shared', sbatch: ['--begin=now+3600'], pendingAfter: '2s' },
      },
      jobs: {
        crash: optimizerJob(['--trials', '12', '--crash-at', '4', '--trial-ms', '200'], {
          lane: 'hpc',
          restart: { delay: '200ms' },
        }),
        long: long(),
        limited: long({ maxRuntime: '1m', progress: { staleAfter: '30s' } }),
        fragile: long({ restart: { budget: 0 } }),
        later: long({ lane: 'held' }),
      },
      queue: [
        { job: 'crash', id: 'c' },
        { job: 'long', id: 'k9' },
        { job: 'long', id: 'stop' },
        { job: 'long', id: 'cancel' },
        { job: 'long', id: 'frozen' },
        { job: 'limited', id: 'limit' },
        { job: 'fragile', id: 'q' },
        { job: 'later', id: 'wait' },
      ],
    },
    cluster.env,
  );
  shared = path.join(swarm.dir, 'shared');
  swarm.up();
}, 90_000);

afterAll(() => {
  swarm?.teardown();
  // What the test left queued or running on the cluster ends with it.
  if (cluster) spawnSync('scancel', ['--user=root'], { env: { ...process.env, ...cluster.env }, timeout: 15_000 });
  cluster?.stop();
});

const S = () => swarm as TestSwarm;
const launches = (id: string) => S().events({ kind: 'worker.launched', target: `worker:${id}` });
const jobOf = (e: StoredEvent | undefined) => String(e?.data.slurmJobId ?? '');
const view = (id: string) =>
  S()
    .query()
    .workers.find((w) => w.id === id);

/**
 * Waits for the worker to run as a SLURM job, at `minAttempt` or a later one,
 * and returns its pid on the node and its attempt. Later, not only exactly:
 * on a loaded machine slurmctld may itself lose the node for a moment
 * (node_failed), which Swarm answers with a new attempt that tests must allow.
 */
async function running(id: string, minAttempt = 1): Promise<{ pid: number; attempt: number }> {
  try {
    return await waitFor(
      `${id} attempt ${minAttempt}+ running under SLURM`,
      () => {
        const w = view(id);
        return w?.status === 'running' && w.attempt >= minAttempt && w.pid && w.slurm?.state === 'RUNNING'
          ? { pid: w.pid, attempt: w.attempt }
          : null;
      },
      60_000,
      250,
    );
  } catch (err) {
    const seen = S()
      .events({ target: `worker:${id}` })
      .slice(-10)
      .map((e) => `  #${e.seq} ${e.kind} ${JSON.stringify(e.data).slice(0, 200)}`);
    throw new Error(`${(err as Error).message}\nnow: ${JSON.stringify(view(id))}\n${seen.join('\n')}`);
  }
}

describe.skipIf(skip)('a slurm lane on a real SLURM cluster', () => {
  it('runs each worker as a batch job, with SLURM_JOB_ID, its node and job id in query', async () => {
    await running('long-k9');
    const w = view('long-k9');
    expect(w?.slurm?.jobId).toBe(jobOf(launches('long-k9').at(-1)));
    expect(w?.slurm?.node).toBe(cluster?.node);
    // The worker folder is on the shared folder; SLURM's own record names the shim as the batch script.
    const dir = path.join(shared, 'workers', 'long-k9');
    expect(fs.existsSync(path.join(dir, 'spec.json'))).toBe(true);
    const show = cluster?.run('scontrol', ['show', 'job', '-o', w?.slurm?.jobId ?? '']) ?? '';
    expect(show).toMatch(/JobName=swarm-slurm-long-k9/);
    expect(show).toMatch(/Requeue=0/);
    const environ = fs.readFileSync(`/proc/${w?.pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain(`SLURM_JOB_ID=${w?.slurm?.jobId}`);
    expect(environ).toContain(`SWARM_CHECKPOINT_DIR=${path.join(shared, 'checkpoints', 'long-k9')}`);
  });

  it('doctor checks SLURM and the shared folder; probe slurm lists partitions and nodes', () => {
    const doctor = S().ctl('doctor', '--json');
    const checks = (JSON.parse(doctor.stdout) as { checks: { name: string; ok: boolean; fix?: string }[] }).checks;
    const byName = new Map(checks.map((c) => [c.name, c]));
    for (const n of ['scontrol', 'squeue', 'sbatch hpc', 'sbatch held', 'shared hpc'])
      expect(byName.get(n), `${n}: ${JSON.stringify(byName.get(n))}`).toMatchObject({ ok: true });
    // A partition the cluster does not have: sbatch --test-only refuses it, and doctor says what to change.
    const bad = path.join(S().dir, 'bad.config.json');
    const raw = JSON.parse(fs.readFileSync(S().configFile, 'utf8')) as { lanes: { hpc: { partition: string } } };
    raw.lanes.hpc.partition = 'nosuch';
    fs.writeFileSync(bad, JSON.stringify(raw));
    const r = spawnSync(SWARMCTL, ['--config', bad, 'doctor', '--json'], {
      env: S().env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    const failed = (
      JSON.parse(r.stdout) as { checks: { name: string; ok: boolean; detail: string; fix?: string }[] }
    ).checks.find((c) => c.name === 'sbatch hpc');
    expect(failed?.ok).toBe(false);
    expect(failed?.detail).toMatch(/partition/i);
    expect(failed?.fix).toMatch(/lanes\.hpc\.partition/);
    const probe = JSON.parse(S().ctl('probe', 'slurm', '--json').stdout) as {
      available: boolean;
      partitions: { name: string; default: boolean }[];
      nodes: { name: string; state: string }[];
    };
    expect(probe.available).toBe(true);
    expect(probe.partitions).toEqual([expect.objectContaining({ name: 'main', default: true })]);
    expect(probe.nodes).toEqual([expect.objectContaining({ name: cluster?.node })]);
    expect(probe.nodes[0]?.state).toMatch(/idle|mixed|allocated/);
  });

  it('a crash (exit 1) is restarted as a new job, attempt + 1, with the same checkpoint folder', async () => {
    const d = await S().waitEvent('detect.worker_crashed', 'worker:crash-c', () => true, 60_000);
    await S().waitEvent('task.completed', 'task:c', () => true, 90_000);
    const crashed = launches('crash-c').find((e) => e.data.attempt === d.data.attempt);
    const next = launches('crash-c').find((e) => e.data.attempt === Number(d.data.attempt) + 1);
    expect(next).toBeDefined();
    expect(jobOf(next)).not.toBe(jobOf(crashed));
    const spec = JSON.parse(fs.readFileSync(path.join(shared, 'workers', 'crash-c', 'spec.json'), 'utf8'));
    expect(spec.attempt).toBeGreaterThan(Number(d.data.attempt));
    expect(spec.env.SWARM_CHECKPOINT_DIR).toBe(path.join(shared, 'checkpoints', 'crash-c'));
  });

  it('kill -9 of the worker on its node: worker_crashed, then a new job', async () => {
    const { pid, attempt } = await running('long-k9');
    const job = view('long-k9')?.slurm?.jobId;
    process.kill(pid, 'SIGKILL');
    const d = await S().waitEvent('detect.worker_crashed', 'worker:long-k9', (e) => e.data.pid === pid);
    expect(d.data.signal).toBe('SIGKILL');
    await running('long-k9', attempt + 1);
    expect(jobOf(launches('long-k9').at(-1))).not.toBe(job);
    await S().waitEvent('action.verified', 'worker:long-k9');
  });

  it('SIGSTOP: progress_stale, the job ended through scancel, and a new job', async () => {
    const { pid, attempt } = await running('long-stop');
    const first = view('long-stop')?.slurm?.jobId ?? '';
    process.kill(pid, 'SIGSTOP');
    await S().waitEvent('detect.progress_stale', 'worker:long-stop', (e) => e.data.pid === pid);
    await running('long-stop', attempt + 1);
    expect(jobOf(launches('long-stop').at(-1))).not.toBe(first);
    // Gone for good: the stopped process was resumed to take its SIGTERM, and its job is over.
    await waitFor('the stopped worker gone', () => !fs.existsSync(`/proc/${pid}`), 30_000);
    const state = cluster?.run('scontrol', ['show', 'job', '-o', first]) ?? '';
    expect(state).not.toMatch(/JobState=(RUNNING|PENDING|COMPLETING)/);
  });

  it('a shim that cannot take the TERM (stopped too): scancel after the grace, and a new job', async () => {
    const { pid, attempt } = await running('long-frozen');
    const job = view('long-frozen')?.slurm?.jobId ?? '';
    const shim = (
      JSON.parse(fs.readFileSync(path.join(shared, 'workers', 'long-frozen', 'pid.json'), 'utf8')) as {
        shimPid: number;
      }
    ).shimPid;
    process.kill(shim, 'SIGSTOP');
    process.kill(pid, 'SIGSTOP');
    await S().waitEvent('detect.progress_stale', 'worker:long-frozen', (e) => e.data.pid === pid);
    // SLURM's own scancel resumes and ends every process of the job, the stopped shim included.
    await waitFor(
      'the frozen job ended',
      () => !fs.existsSync(`/proc/${shim}`) && !fs.existsSync(`/proc/${pid}`),
      60_000,
      250,
    );
    // The processes go before SLURM is done with the job: COMPLETING comes first, then the state it ends in.
    let ended = '';
    await waitFor(
      'the frozen job past COMPLETING',
      () => !/JobState=(RUNNING|COMPLETING)/.test((ended = cluster?.run('scontrol', ['show', 'job', '-o', job]) ?? '')),
      30_000,
      250,
    );
    expect(ended).toMatch(/JobState=CANCELLED/);
    await running('long-frozen', attempt + 1);
    // Swarm's own scancel is not a person's: no job_cancelled.
    expect(S().events({ kind: 'detect.job_cancelled', target: 'worker:long-frozen' })).toHaveLength(0);
  });

  it('budget spent on a live failure: quarantined, its job ended through scancel, never resubmitted', async () => {
    const { pid } = await running('fragile-q');
    const job = view('fragile-q')?.slurm?.jobId ?? '';
    process.kill(pid, 'SIGSTOP');
    await S().waitEvent('detect.progress_stale', 'worker:fragile-q');
    await S().waitEvent('escalation.raised', 'worker:fragile-q');
    await waitFor(
      'its job ended',
      () => !/JobState=(RUNNING|COMPLETING)/.test(cluster?.run('scontrol', ['show', 'job', '-o', job]) ?? ''),
      30_000,
      250,
    );
    const ticks = sentryTicks();
    await waitFor('ten sentry ticks', () => sentryTicks() >= ticks + 10, 30_000, 200);
    expect(view('fragile-q')?.status).toBe('quarantined');
    expect(launches('fragile-q').at(-1)?.data.slurmJobId).toBe(job);
    expect(S().events({ kind: 'escalation.raised', target: 'worker:fragile-q' })).toHaveLength(1);
  });

  it('scancel by a person: recorded, the worker stopped, never restarted', async () => {
    await running('long-cancel');
    const before = launches('long-cancel').length;
    const job = view('long-cancel')?.slurm?.jobId ?? '';
    cluster?.run('scancel', [job]);
    const d = await S().waitEvent('detect.job_cancelled', 'worker:long-cancel');
    expect(d.data.jobId).toBe(job);
    await waitFor('worker stopped', () => view('long-cancel')?.status === 'stopped', 20_000, 250);
    // Several ticks later it is still stopped, and never launched again.
    const ticks = sentryTicks();
    await waitFor('ten sentry ticks', () => sentryTicks() >= ticks + 10, 30_000, 200);
    expect(view('long-cancel')?.status).toBe('stopped');
    expect(launches('long-cancel')).toHaveLength(before);
  });

  it("a job pending past pendingAfter is pending_stuck, escalated with SLURM's Reason", async () => {
    const d = await S().waitEvent('detect.pending_stuck', 'worker:later-wait');
    expect(d.data.slurmReason).toBe('BeginTime');
    const e = await S().waitEvent('escalation.raised', 'worker:later-wait');
    expect(String(e.data.reason)).toMatch(/BeginTime/);
    expect(view('later-wait')?.slurm?.state).toBe('PENDING');
  });

  it("the job's time limit (its maxRuntime as --time) gives runtime_exceeded", async () => {
    const d = await S().waitEvent('detect.runtime_exceeded', 'worker:limited-limit', () => true, 150_000);
    expect(d.data.slurmState).toBe('TIMEOUT');
    const show = cluster?.run('scontrol', ['show', 'job', '-o', String(d.data.jobId)]) ?? '';
    expect(show).toMatch(/TimeLimit=00:01:00/);
    // Restarted as a new job, under the same incident.
    const again = await S().waitEvent(
      'worker.launched',
      'worker:limited-limit',
      (e) => e.data.attempt === Number(d.data.attempt) + 1,
    );
    expect(jobOf(again)).not.toBe(String(d.data.jobId));
  }, 180_000);

  it('the head node dies (PM2 and every daemon killed -9): the jobs run on, and a new Swarm adopts them', async () => {
    const { attempt } = await running('long-k9');
    const job = view('long-k9')?.slurm?.jobId;
    const before = launches('long-k9').length;
    killSwarm();
    // While no Swarm runs, the job still does.
    expect(cluster?.run('squeue', ['-h', '-j', job ?? '', '-o', '%T']).trim()).toBe('RUNNING');
    S().up();
    const a = await S().waitEvent('worker.adopted', 'worker:long-k9', (e) => e.data.slurmJobId === job);
    expect(a.data.attempt).toBe(attempt);
    const seen = view('long-k9')?.progress?.iteration ?? 0;
    await waitFor('progress after adoption', () => (view('long-k9')?.progress?.iteration ?? 0) > seen, 30_000, 250);
    expect(launches('long-k9')).toHaveLength(before);
    expect(view('long-k9')?.slurm?.jobId).toBe(job);
  }, 120_000);

  it('slurmd killed during a job: node_failed, resubmitted once the node is back, no budget spent', async () => {
    const { attempt } = await running('long-k9');
    const budgetBefore = restartTimes('long-k9');
    const job = view('long-k9')?.slurm?.jobId;
    cluster?.killSlurmd();
    const d = await S().waitEvent('detect.node_failed', 'worker:long-k9', (e) => e.data.jobId === job, 90_000);
    expect(d.data.jobId).toBe(job);
    expect(d.data.slurmState).toBe('NODE_FAIL');
    cluster?.startSlurmd();
    await running('long-k9', attempt + 1);
    expect(jobOf(launches('long-k9').at(-1))).not.toBe(job);
    expect(restartTimes('long-k9')).toEqual(budgetBefore);
    await S().waitEvent('action.verified', 'worker:long-k9', (e) => e.seq > d.seq, 60_000);
  }, 180_000);
});

function sentryTicks(): number {
  const f = path.join(S().stateDir, 'worker_sentry_state.json');
  try {
    return Number((JSON.parse(fs.readFileSync(f, 'utf8')) as { ticks?: number }).ticks ?? 0);
  } catch {
    return 0;
  }
}

function restartTimes(id: string): number[] {
  const f = path.join(S().stateDir, 'worker_sentry_state.json');
  const body = JSON.parse(fs.readFileSync(f, 'utf8')) as {
    workers: { id: string; history: { restartTimes: number[] } }[];
  };
  return body.workers.find((w) => w.id === id)?.history.restartTimes ?? [];
}

/** Every process of this swarm's PM2, its God daemon included, killed -9 at once: the head node lost. */
function killSwarm(): void {
  const s = S();
  const list = spawnSync(PM2, ['jlist'], { env: s.env, encoding: 'utf8', timeout: 30_000 }).stdout;
  const pids = (JSON.parse(list.slice(list.indexOf('['))) as { pid?: number }[]).flatMap((a) => (a.pid ? [a.pid] : []));
  const god = Number(fs.readFileSync(path.join(s.pm2Home, 'pm2.pid'), 'utf8'));
  for (const pid of [god, ...pids]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
