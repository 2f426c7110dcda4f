import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { FAILURE_CLASSES } from '../event-kinds';
import { interpolate, type CompiledConfig, type CompiledJob } from '../config/config';
import { readStateFile } from '../state-store';
import type { WorkerRecord } from './record';

// Each worker has a folder in <stateDir>/workers/<id>/, written by the shim
// (pid.json, exit.json, output.log) and the sentry (spec.json). The files
// outlive the sentry, which is how a restarted sentry adopts its workers and
// learns of exits it did not see.

export const workerDir = (root: string, workerId: string): string => path.join(root, 'workers', workerId);
export const checkpointDir = (root: string, workerId: string): string => path.join(root, 'checkpoints', workerId);

/**
 * Where a lane's worker and checkpoint folders live: the state folder, or for
 * a slurm lane its sharedDir, which the compute nodes see too.
 */
export function workerRoot(config: Pick<CompiledConfig, 'stateDir' | 'lanes'>, lane: string): string {
  return config.lanes[lane]?.slurm?.sharedDir ?? config.stateDir;
}
export const workerDirOf = (config: Pick<CompiledConfig, 'stateDir' | 'lanes'>, w: { id: string; lane: string }) =>
  workerDir(workerRoot(config, w.lane), w.id);
export const checkpointDirOf = (config: Pick<CompiledConfig, 'stateDir' | 'lanes'>, w: { id: string; lane: string }) =>
  checkpointDir(workerRoot(config, w.lane), w.id);

/** Every folder worker folders may be in: the state folder's and each slurm lane's. */
export function workerRoots(config: Pick<CompiledConfig, 'stateDir' | 'lanes'>): string[] {
  return [
    ...new Set([config.stateDir, ...Object.values(config.lanes).flatMap((l) => (l.slurm ? [l.slurm.sharedDir] : []))]),
  ];
}

export const SpecSchema = z.object({
  workerId: z.string(),
  job: z.string(),
  taskId: z.string().nullable(),
  slot: z.number().int().nullable(),
  attempt: z.number().int(),
  command: z.array(z.string()),
  cwd: z.string(),
  /** Secret-named variables are here by name only, their values blanked: the shim takes them from secretEnvFile. */
  env: z.record(z.string(), z.string()),
  /** Written 0600 just before the shim starts, and deleted by the shim as it reads it. */
  secretEnvFile: z.string().nullable().default(null),
  dir: z.string(),
  stopGraceMs: z.number(),
  progressFile: z.string(),
  launchedAt: z.number(),
  /** The shim rotates output.log past this, keeping logKeep generations (logs.* in the config). */
  logMaxBytes: z.number().optional(),
  logKeep: z.number().int().optional(),
  /** Run as a SLURM batch script: the shim passes SLURM_* on and names its node in pid.json. */
  slurm: z.boolean().optional(),
});
export type WorkerSpec = z.output<typeof SpecSchema>;

export const PidSchema = z.object({
  pid: z.number().int(),
  pgid: z.number().int(),
  shimPid: z.number().int(),
  startedAt: z.string(),
  /** On a slurm lane: the compute node and job the shim runs in. */
  node: z.string().optional(),
  jobId: z.string().nullable().optional(),
});
export const ExitSchema = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  endedAt: z.string(),
  error: z.string().optional(),
  /** The shim was told to stop (pm2 stop/delete, swarmctl down): not a failure of the worker. */
  stoppedBySwarm: z.boolean().optional(),
  shimPid: z.number().int().optional(),
  pid: z.number().int().optional(),
  /** On a slurm lane: the job whose shim wrote it. */
  jobId: z.string().nullable().optional(),
});
export type ExitRecord = z.output<typeof ExitSchema>;

export function readPid(dir: string): z.output<typeof PidSchema> | null {
  const r = readStateFile(path.join(dir, 'pid.json'), PidSchema);
  return r.ok ? r.value : null;
}

export function readExit(dir: string): ExitRecord | null {
  const file = path.join(dir, 'exit.json');
  // Asked of every live worker each tick and almost never there: no error object made to say so.
  if (fs.lstatSync(file, { throwIfNoEntry: false }) === undefined) return null;
  const r = readStateFile(file, ExitSchema);
  return r.ok ? r.value : null;
}

export function readSpec(dir: string): WorkerSpec | null {
  const r = readStateFile(path.join(dir, 'spec.json'), SpecSchema);
  return r.ok ? r.value : null;
}

/** Written by whoever ends a worker on purpose (hang-guard), so the sentry classifies the exit right. */
export const KillReasonSchema = z.object({
  class: z.enum(FAILURE_CLASSES),
  incidentId: z.number().int(),
  actionId: z.number().int(),
  pid: z.number().int(),
  by: z.string(),
  message: z.string(),
});
export type KillReason = z.output<typeof KillReasonSchema>;

export function readKillReason(dir: string): KillReason | null {
  const r = readStateFile(path.join(dir, 'kill-reason.json'), KillReasonSchema);
  return r.ok ? r.value : null;
}

/** Clears what the previous attempt left, so its exit is not taken for the next one's. */
export function resetAttemptFiles(dir: string): void {
  for (const f of ['pid.json', 'exit.json', 'kill-reason.json', SLURM_JOB_FILE])
    fs.rmSync(path.join(dir, f), { force: true });
}

export function listWorkerDirs(root: string): string[] {
  try {
    return fs.readdirSync(path.join(root, 'workers')).map((d) => path.join(root, 'workers', d));
  } catch {
    return [];
  }
}

/** Written by the sentry once sbatch has answered: the job that runs this attempt, for a restarted sentry to adopt. */
export const SlurmJobFileSchema = z.object({ jobId: z.string(), attempt: z.number().int(), submittedAt: z.number() });
export const SLURM_JOB_FILE = 'slurm-job.json';

export function readSlurmJob(dir: string): z.output<typeof SlurmJobFileSchema> | null {
  const r = readStateFile(path.join(dir, SLURM_JOB_FILE), SlurmJobFileSchema);
  return r.ok ? r.value : null;
}

/** The progress file a worker writes: its job's progress.path, or progress.json in its checkpoint folder. */
export function progressFileFor(
  config: CompiledConfig,
  job: CompiledJob,
  w: Pick<WorkerRecord, 'id' | 'taskId' | 'attempt'>,
): string {
  const vars = { taskId: w.taskId ?? '', workerId: w.id, attempt: w.attempt };
  return job.progress?.pathTemplate
    ? interpolate(job.progress.pathTemplate, vars)
    : path.join(checkpointDir(workerRoot(config, job.lane), w.id), 'progress.json');
}
