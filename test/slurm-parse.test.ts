import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../lib/config/config';
import type { ConfigError } from '../lib/errors';
import { jobActive, parseScontrolJobs, parseScontrolLine, parseSqueueJson, slurmEnd } from '../lib/slurm/jobs';
import { parsePartitions, parseSinfoNodes } from '../lib/slurm/probe';
import { sbatchArgv, type SubmitRequest } from '../lib/slurm/slurm-cli';
import { sbatchArgProblem } from '../lib/config/lane-schema';
import { adoptFromDisk } from '../lib/sentry/adopt';
import { SlurmJobs } from '../lib/sentry/slurm-jobs';
import { SlurmCli } from '../lib/slurm/slurm-cli';
import { daemonContext } from './helpers/daemon-context';
import { waitFor } from './helpers/tmp';

// The pure side of slurm lanes: the config, the sbatch argv, and SLURM's
// machine-readable output, read from samples a real slurm-wlm 22.05 printed
// (test/fixtures/slurm/). The cluster itself is slurm-swarm.test.ts's.

const fixture = (f: string) => fs.readFileSync(path.join(__dirname, 'fixtures', 'slurm', f), 'utf8');

const issuesOf = (raw: unknown): { path: string; message: string }[] => {
  try {
    compileConfig(raw, '/tmp/c.json', {});
  } catch (e) {
    return (e as ConfigError).issues;
  }
  return [];
};

describe('a slurm lane in the config', () => {
  const job = { command: ['node', 'w.js'], lane: 'hpc' };

  it('compiles: sharedDir made absolute, slots fill, defaults for poll and pendingAfter', () => {
    const c = compileConfig(
      {
        name: 'x',
        lanes: { hpc: { kind: 'slurm', slots: 40, sharedDir: 'shared', sbatch: ['--gres=gpu:1'] } },
        jobs: { j: job },
      },
      '/srv/swarm/swarm.config.json',
      {},
    );
    expect(c.lanes.hpc?.fill).toBe('slots');
    expect(c.lanes.hpc?.slurm).toEqual({
      partition: null,
      sbatchArgs: ['--gres=gpu:1'],
      sharedDir: '/srv/swarm/shared',
      pollMs: 2000,
      pendingAfterMs: 600_000,
    });
  });

  it('refuses --wrap, the options Swarm sets, a missing sharedDir, and slurm fields on other lanes', () => {
    const issues = issuesOf({
      name: 'x',
      lanes: {
        hpc: { kind: 'slurm', slots: 2, sbatch: ['--time=1:00:00', '--wrap=python train.py', '-Jname', '--output=x'] },
        cpu: { kind: 'cpu', slots: 2, partition: 'gpu', sharedDir: '/x' },
      },
      jobs: { j: job },
    });
    const at = (p: string) => issues.find((i) => i.path === p)?.message ?? '';
    expect(at('lanes.hpc.sharedDir')).toMatch(/share/);
    expect(at('lanes.hpc.sbatch.1')).toMatch(/--wrap is not allowed: runs its command through a shell/);
    expect(at('lanes.hpc.sbatch.2')).toMatch(/-J is not allowed/);
    expect(at('lanes.hpc.sbatch.3')).toMatch(/--output is not allowed/);
    expect(at('lanes.hpc.sbatch.0')).toBe('');
    expect(at('lanes.cpu.partition')).toMatch(/only a slurm lane/);
    expect(at('lanes.cpu.sharedDir')).toMatch(/only a slurm lane/);
  });

  it('tells an option from a value that only starts like one', () => {
    expect(sbatchArgProblem('--export=ALL')).toMatch(/--export/);
    expect(sbatchArgProblem('--exclusive')).toBeNull();
    expect(sbatchArgProblem('-e')).toMatch(/-e is not allowed/);
    expect(sbatchArgProblem('--requeue')).toMatch(/resubmits/);
    expect(sbatchArgProblem('--gres=gpu:2')).toBeNull();
  });
});

describe('the sbatch argv', () => {
  const req: SubmitRequest = {
    script: '/s/state/slurm/worker-shim.js',
    args: ['/shared/workers/a/spec.json'],
    jobName: 'swarm-x-a',
    partition: 'gpu',
    extraArgs: ['--gres=gpu:1'],
    output: '/shared/workers/a/batch.log',
    cwd: '/work',
    timeLimitMinutes: 90,
  };

  it('is argv, never --wrap: the shim is the script, the spec its argument, and SLURM does not requeue', () => {
    expect(sbatchArgv(req)).toEqual([
      'sbatch',
      '--parsable',
      '--no-requeue',
      '--job-name=swarm-x-a',
      '--output=/shared/workers/a/batch.log',
      '--chdir=/work',
      '--export=PATH',
      '--partition=gpu',
      '--time=90',
      '--gres=gpu:1',
      '/s/state/slurm/worker-shim.js',
      '/shared/workers/a/spec.json',
    ]);
  });

  it('leaves the time limit to the lane when it sets one, and to the cluster when the job has no maxRuntime', () => {
    expect(sbatchArgv({ ...req, extraArgs: ['--time=04:00:00'] })).not.toContain('--time=90');
    expect(sbatchArgv({ ...req, extraArgs: ['-t', '10'] })).not.toContain('--time=90');
    expect(
      sbatchArgv({ ...req, partition: null, timeLimitMinutes: null }).some((a) => /^--(time|partition)/.test(a)),
    ).toBe(false);
  });
});

describe("SLURM's output", () => {
  it('reads squeue --json: states, reasons, nodes and exit statuses', () => {
    const jobs = new Map(parseSqueueJson(fixture('squeue.json')).map((j) => [j.jobId, j]));
    expect(jobs.get('1')).toMatchObject({ state: 'COMPLETED', exitCode: 0, signal: null, node: 'vm' });
    expect(jobs.get('2')).toMatchObject({ state: 'FAILED', reason: 'NonZeroExitCode', exitCode: 3, signal: null });
    expect(jobs.get('3')).toMatchObject({ state: 'FAILED', exitCode: null, signal: 'SIGKILL' });
    expect(jobs.get('4')).toMatchObject({ state: 'RUNNING', node: 'vm' });
    expect(jobs.get('5')).toMatchObject({ state: 'PENDING', reason: 'BeginTime', node: null });
  });

  it('reads the newer shapes too: a state list, an exit-code object', () => {
    const [j] = parseSqueueJson(
      JSON.stringify({
        jobs: [{ job_id: 7, job_state: ['FAILED'], exit_code: { return_code: 2, signal: { signal_id: 0 } } }],
      }),
    );
    expect(j).toMatchObject({ jobId: '7', state: 'FAILED', exitCode: 2, signal: null });
  });

  it('names what is wrong with output it cannot read, never guesses', () => {
    expect(() => parseSqueueJson('squeue: error: slurm_load_jobs')).toThrow(/not JSON/);
    expect(() => parseSqueueJson(JSON.stringify({ jobs: [{ job_state: 'RUNNING' }] }))).toThrow(/jobs\.0\.job_id/);
  });

  it('reads scontrol -o lines whose values hold spaces', () => {
    const f = parseScontrolLine(fixture('scontrol-job.txt').trim());
    expect(f.JobState).toBe('RUNNING');
    expect(f.Requeue).toBe('0');
    expect(f.ExitCode).toBe('0:0');
    expect(parseScontrolLine('NodeName=vm OS=Linux 6.1 #1 SMP State=IDLE')).toEqual({
      NodeName: 'vm',
      OS: 'Linux 6.1 #1 SMP',
      State: 'IDLE',
    });
  });

  it('reads scontrol show job -o, for a SLURM that cannot print JSON', () => {
    const jobs = new Map(parseScontrolJobs(fixture('scontrol-jobs.txt')).map((j) => [j.jobId, j]));
    expect(jobs.get('1')).toEqual({
      jobId: '1',
      state: 'FAILED',
      reason: 'NonZeroExitCode',
      node: 'vm',
      exitCode: 3,
      signal: null,
    });
    expect(jobs.get('2')).toMatchObject({ state: 'FAILED', exitCode: null, signal: 'SIGKILL' });
    expect(jobs.get('3')).toMatchObject({ state: 'RUNNING', node: 'vm', exitCode: 0 });
    expect(jobs.get('4')).toMatchObject({ state: 'PENDING', reason: 'BeginTime', node: null });
  });

  it('reads partitions and nodes for probe slurm', () => {
    expect(parsePartitions(fixture('scontrol-partition.txt'))).toEqual([
      expect.objectContaining({ name: 'main', state: 'UP', default: true, nodes: 'vm', maxTime: 'UNLIMITED' }),
    ]);
    const [node] = parseSinfoNodes(fixture('sinfo.json'));
    expect(node).toMatchObject({ name: 'vm', partitions: ['main'] });
    expect(node?.cpus).toBeGreaterThan(0);
  });
});

describe('what a job state means to the sentry', () => {
  it('active until SLURM ends it', () => {
    for (const s of ['PENDING', 'RUNNING', 'COMPLETING', 'SUSPENDED', 'SUBMITTED', 'UNKNOWN'])
      expect(jobActive(s)).toBe(true);
    for (const s of ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'OUT_OF_MEMORY', 'GONE'])
      expect(jobActive(s)).toBe(false);
  });

  it('each end state has its remedy', () => {
    expect(slurmEnd('NODE_FAIL')).toEqual({ kind: 'evicted', class: 'node_failed' });
    expect(slurmEnd('BOOT_FAIL')).toEqual({ kind: 'evicted', class: 'node_failed' });
    expect(slurmEnd('PREEMPTED')).toEqual({ kind: 'evicted', class: 'preempted' });
    expect(slurmEnd('TIMEOUT')).toEqual({ kind: 'limit', class: 'runtime_exceeded' });
    expect(slurmEnd('OUT_OF_MEMORY')).toEqual({ kind: 'limit', class: 'worker_oom' });
    expect(slurmEnd('CANCELLED')).toEqual({ kind: 'cancelled' });
    // The worker's own exit: judged from its exit.json, as under PM2.
    expect(slurmEnd('COMPLETED')).toBeNull();
    expect(slurmEnd('FAILED')).toBeNull();
  });
});

describe('adopting slurm jobs from the worker folders', () => {
  const spec = (dir: string, runId: string) => ({
    workerId: path.basename(dir),
    job: 'train',
    taskId: 't1',
    slot: null,
    attempt: 2,
    command: ['node', 'w.js'],
    cwd: '/tmp',
    env: { SWARM_RUN_ID: runId },
    dir,
    stopGraceMs: 1000,
    progressFile: path.join(dir, 'progress.json'),
    launchedAt: 1,
    slurm: true,
  });
  const make = (root: string, id: string, runId: string, files: Record<string, unknown>) => {
    const dir = path.join(root, 'workers', id);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec(dir, runId)));
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), JSON.stringify(v));
  };

  it("adopts this run's jobs as UNKNOWN, for the first tick's squeue to say; never another run's", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'swarm-adopt-'));
    try {
      const job = { jobId: '41', attempt: 2, submittedAt: 5 };
      make(root, 'train-a', 'r1', {
        'slurm-job.json': job,
        'pid.json': { pid: 9, pgid: 9, shimPid: 8, startedAt: 'x', node: 'n07', jobId: '41' },
      });
      make(root, 'train-b', 'r0', { 'slurm-job.json': job });
      make(root, 'train-c', 'r1', { 'slurm-job.json': { ...job, attempt: 1 } });
      make(root, 'train-d', 'r1', { 'slurm-job.json': job, 'exit.json': { exitCode: 0, signal: null, endedAt: 'x' } });
      const laneOf = () => 'hpc';
      const all = adoptFromDisk([root], laneOf, { runId: 'r1' });
      expect(all.map((w) => w.id).sort()).toEqual(['train-a', 'train-d']);
      const a = all.find((w) => w.id === 'train-a');
      expect(a?.slurm).toMatchObject({ jobId: '41', state: 'UNKNOWN', node: 'n07', submittedAt: 5 });
      expect(a?.pid).toBeNull();
      expect(a?.attempt).toBe(2);
      // Beside a valid state file, only what may still run: not the one whose exit is already written.
      expect(adoptFromDisk([root], laneOf, { runId: 'r1', known: new Map() }).map((w) => w.id)).toEqual(['train-a']);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("the shared folder's watch", () => {
  it("polls a slurm lane's folders, where a compute node's write gives no inotify event, and wakes the tick", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarm-shared-'));
    const config = compileConfig(
      {
        name: 'w',
        stateDir: path.join(dir, 'state'),
        lanes: { hpc: { kind: 'slurm', slots: 1, sharedDir: path.join(dir, 'shared'), poll: '100ms' } },
        jobs: { j: { command: ['node'], lane: 'hpc' } },
      },
      path.join(dir, 'c.json'),
      {},
    );
    fs.mkdirSync(path.join(dir, 'shared', 'workers', 'j'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'shared', 'checkpoints', 'j'), { recursive: true });
    const ctx = daemonContext('worker-sentry', config);
    const jobs = new SlurmJobs(new SlurmCli());
    let pokes = 0;
    try {
      jobs.watch(ctx, config, () => (pokes += 1));
      // Once the poller has had its first look, the write below is a change, not the initial scan.
      await jobs.watching;
      fs.writeFileSync(path.join(dir, 'shared', 'workers', 'j', 'exit.json'), '{}');
      await waitFor('a poke for exit.json', () => pokes >= 1, 10_000, 50);
      const before = pokes;
      fs.writeFileSync(path.join(dir, 'shared', 'workers', 'j', 'output.log'), 'not watched');
      fs.writeFileSync(path.join(dir, 'shared', 'checkpoints', 'j', 'progress.json'), '{}');
      await waitFor('a poke for progress.json', () => pokes > before, 10_000, 50);
    } finally {
      await jobs.close();
      ctx.db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
