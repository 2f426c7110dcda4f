import fs from 'node:fs';
import path from 'node:path';
import { ensureDir, writeJsonAtomic } from '../atomic-file';
import { interpolate, PACKAGE_ROOT, type CompiledConfig, type CompiledJob } from '../config';
import type { ProcessManager } from '../process-manager';
import { KILL_TIMEOUT_MS } from '../signals';
import { checkpointDir, resetAttemptFiles, workerDir, type WorkerSpec } from './worker-files';
import { pm2NameOf, type WorkerRecord } from './worker-record';

// Turns a worker record into a running PM2 app: the spec the shim reads, the
// environment docs/config.md promises every worker, and autorestart off, because
// Swarm, not PM2, decides when to restart.

export const SHIM = path.join(PACKAGE_ROOT, 'lib', 'worker-shim.js');

// PM2 and the daemon's own variables are not the worker's business.
const DROP_ENV = /^(pm_|PM2_|pm2_|axm_|SWARM_|NODE_APP_INSTANCE$|unique_id$|status$|instances$|exec_mode$|name$|restart_time$|created_at$|pm_uptime$|vizion|autorestart$|namespace$|windowsHide$|filter_env$|merge_logs$|kill_retry_time$|treekill$|automation$|instance_var$|exec_interpreter$|pmx$|km_link$|version$|node_version$|username$|args$|env$)/;

export function workerEnv(base: NodeJS.ProcessEnv, job: CompiledJob, vars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !DROP_ENV.test(k)) env[k] = v;
  return { ...env, ...job.env, ...vars };
}

export function progressFileFor(config: CompiledConfig, job: CompiledJob, w: WorkerRecord): string {
  const vars = { taskId: w.taskId ?? '', workerId: w.id, attempt: w.attempt };
  return job.progress?.pathTemplate ? interpolate(job.progress.pathTemplate, vars) : path.join(checkpointDir(config.stateDir, w.id), 'progress.json');
}

/** The argv of a tier: 0 is the job's own command, N its fallbacks[N-1]. */
export function commandFor(job: CompiledJob, tier: number, vars: { taskId: string; workerId: string; attempt: number }): string[] {
  const t = tier > 0 ? job.fallbacks[tier - 1] : undefined;
  const [command, args] = t ? [t.command, t.args] : [job.command, job.args];
  return [...command, ...args.map((a) => interpolate(a, vars))];
}

export async function launchWorker(
  pm: ProcessManager,
  config: CompiledConfig,
  job: CompiledJob,
  w: WorkerRecord,
  runId: string,
  extraArgs: string[],
  now: number,
): Promise<WorkerSpec> {
  const dir = workerDir(config.stateDir, w.id);
  const ckpt = checkpointDir(config.stateDir, w.id);
  ensureDir(dir);
  ensureDir(ckpt);
  resetAttemptFiles(dir);
  const vars = { taskId: w.taskId ?? '', workerId: w.id, attempt: w.attempt };
  const progressFile = progressFileFor(config, job, w);
  fs.mkdirSync(path.dirname(progressFile), { recursive: true, mode: 0o700 });
  const gpuEnv: Record<string, string> = config.lanes[job.lane]?.kind === 'gpu' ? { CUDA_VISIBLE_DEVICES: w.gpus.join(',') } : {};
  const env = workerEnv(process.env, job, {
    ...gpuEnv,
    SWARM_RUN_ID: runId,
    SWARM_WORKER_ID: w.id,
    SWARM_TASK_ID: w.taskId ?? '',
    SWARM_ATTEMPT: String(w.attempt),
    SWARM_CHECKPOINT_DIR: ckpt,
    SWARM_PROGRESS_FILE: progressFile,
  });
  const spec: WorkerSpec = {
    workerId: w.id, job: job.name, taskId: w.taskId, slot: w.slot, attempt: w.attempt,
    command: [...commandFor(job, w.tier, vars), ...extraArgs, ...(job.strategies[w.strategy] ?? []).map((a) => interpolate(a, vars))],
    cwd: job.cwd, env, dir, stopGraceMs: job.stopGraceMs, progressFile, launchedAt: now,
  };
  writeJsonAtomic(path.join(dir, 'spec.json'), spec);
  const name = pm2NameOf(w.id);
  await pm.delete(name);
  await pm.start({
    name,
    script: SHIM,
    args: [path.join(dir, 'spec.json')],
    cwd: job.cwd,
    interpreter: process.execPath,
    env: { SWARM_WORKER_ID: w.id },
    autorestart: false,
    killTimeoutMs: job.stopGraceMs + KILL_TIMEOUT_MS,
  });
  return spec;
}
