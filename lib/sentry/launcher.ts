import fs from 'node:fs';
import path from 'node:path';
import { ensureDir, writeJsonAtomic } from '../atomic-file';
import { interpolate, PACKAGE_ROOT, type CompiledConfig, type CompiledJob } from '../config/config';
import type { ProcessManager } from '../process-manager';
import { KILL_TIMEOUT_MS } from '../signals';
import { splitSecrets, workerEnv } from '../worker-env';
import { lastFailurePath } from './last-failure';
import {
  checkpointDirOf,
  progressFileFor,
  resetAttemptFiles,
  SLURM_JOB_FILE,
  workerDirOf,
  type WorkerSpec,
} from '../worker/files';
import type { Slurm } from '../slurm/slurm-cli';
import { slurmShimScript } from '../slurm/shim-script';
import { pm2NameOf, type WorkerRecord } from '../worker/record';

// Turns a worker record into a running PM2 app: the spec the shim reads, the
// environment docs/config.md promises every worker (lib/worker-env.ts), and
// autorestart off, because Swarm, not PM2, decides when to restart. Secret
// values never sit in spec.json or in PM2: the shim gets them from a 0600
// file it deletes as it reads it. PM2 runs the worker's anchor
// (lib/worker-anchor.js), which starts the shim outside PM2's process tree, so
// that PM2's own death does not end the work.

export const ANCHOR = path.join(PACKAGE_ROOT, 'lib', 'worker-anchor.js');
export const SECRET_ENV_FILE = 'secret-env.json';

/** The argv of a tier: 0 is the job's own command, N its fallbacks[N-1]. */
export function commandFor(
  job: CompiledJob,
  tier: number,
  vars: { taskId: string; workerId: string; attempt: number },
): string[] {
  const t = tier > 0 ? job.fallbacks[tier - 1] : undefined;
  const [command, args] = t ? [t.command, t.args] : [job.command, job.args];
  return [...command, ...args.map((a) => interpolate(a, vars))];
}

/** Where workers start: PM2 on this machine, or a SLURM cluster for a slurm lane. */
export interface WorkerStarters {
  pm: ProcessManager;
  slurm: Slurm;
}

/** What a launch started: the spec the shim reads, and for a slurm lane the batch job. */
export interface Launched {
  spec: WorkerSpec;
  jobId: string | null;
}

export async function launchWorker(
  starters: WorkerStarters,
  config: CompiledConfig,
  job: CompiledJob,
  w: WorkerRecord,
  runId: string,
  extraArgs: string[],
  now: number,
): Promise<Launched> {
  const dir = workerDirOf(config, w);
  const ckpt = checkpointDirOf(config, w);
  ensureDir(dir);
  ensureDir(ckpt);
  resetAttemptFiles(dir);
  const vars = { taskId: w.taskId ?? '', workerId: w.id, attempt: w.attempt };
  const progressFile = progressFileFor(config, job, w);
  fs.mkdirSync(path.dirname(progressFile), { recursive: true, mode: 0o700 });
  const lane = config.lanes[job.lane];
  // A gpu lane's worker sees its GPU; a cpu lane's sees none (an empty CUDA_VISIBLE_DEVICES hides every
  // device from CUDA), so CPU work cannot take a GPU another lane was promised, unless the lane opts out.
  // A slurm lane's GPUs are SLURM's to hand out (--gres): it sets CUDA_VISIBLE_DEVICES on the node.
  const gpuEnv: Record<string, string> =
    lane?.kind === 'gpu'
      ? { CUDA_VISIBLE_DEVICES: w.gpus.join(',') }
      : lane?.hideGpus === false || lane?.kind === 'slurm'
        ? {}
        : { CUDA_VISIBLE_DEVICES: '' };
  const env = workerEnv(process.env, job, {
    ...gpuEnv,
    SWARM_RUN_ID: runId,
    SWARM_WORKER_ID: w.id,
    SWARM_TASK_ID: w.taskId ?? '',
    SWARM_ATTEMPT: String(w.attempt),
    SWARM_CHECKPOINT_DIR: ckpt,
    SWARM_PROGRESS_FILE: progressFile,
    SWARM_LAST_FAILURE: lastFailurePath(config, w),
  });
  const { stored, secret } = splitSecrets(env);
  const secretEnvFile = Object.keys(secret).length > 0 ? path.join(dir, SECRET_ENV_FILE) : null;
  const spec: WorkerSpec = {
    workerId: w.id,
    job: job.name,
    taskId: w.taskId,
    slot: w.slot,
    attempt: w.attempt,
    command: [
      ...commandFor(job, w.tier, vars),
      ...extraArgs,
      ...(job.strategies[w.strategy] ?? []).map((a) => interpolate(a, vars)),
    ],
    cwd: job.cwd,
    env: stored,
    secretEnvFile,
    dir,
    stopGraceMs: job.stopGraceMs,
    progressFile,
    launchedAt: now,
    logMaxBytes: config.logs.workerOutputMaxBytes,
    logKeep: config.logs.keep,
    ...(lane?.slurm ? { slurm: true } : {}),
  };
  // Not fsynced: the shim reads it at once, from the page cache. After a power cut the worker is gone
  // anyway, and the sentry finds it lost from its own state file (lost.ts), not from this one. The two
  // fsyncs were most of a launch decision's own time (docs/PERFORMANCE.md).
  writeJsonAtomic(path.join(dir, 'spec.json'), spec, { durable: false });
  if (secretEnvFile) writeJsonAtomic(secretEnvFile, secret);
  if (lane?.slurm) {
    const jobId = await starters.slurm.submit({
      script: slurmShimScript(config.stateDir),
      args: [path.join(dir, 'spec.json')],
      jobName: `swarm-${config.name}-${w.id}`,
      partition: lane.slurm.partition,
      extraArgs: lane.slurm.sbatchArgs,
      output: path.join(dir, 'batch.log'),
      cwd: job.cwd,
      timeLimitMinutes: job.maxRuntimeMs === null ? null : Math.max(1, Math.ceil(job.maxRuntimeMs / 60_000)),
    });
    writeJsonAtomic(path.join(dir, SLURM_JOB_FILE), { jobId, attempt: w.attempt, submittedAt: now });
    return { spec, jobId };
  }
  const { pm } = starters;
  const name = pm2NameOf(w.id);
  await pm.delete(name);
  await pm.start({
    name,
    script: ANCHOR,
    args: [path.join(dir, 'spec.json')],
    cwd: job.cwd,
    interpreter: process.execPath,
    env: { SWARM_WORKER_ID: w.id },
    // The shim keeps the worker's output in output.log, rotated; a second copy in PM2's logs would grow without
    // bound, and stay after the app is deleted.
    outFile: '/dev/null',
    errorFile: '/dev/null',
    autorestart: false,
    namespace: config.name,
    killTimeoutMs: job.stopGraceMs + KILL_TIMEOUT_MS,
  });
  return { spec, jobId: null };
}
