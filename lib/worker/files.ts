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

export const workerDir = (stateDir: string, workerId: string): string => path.join(stateDir, 'workers', workerId);
export const checkpointDir = (stateDir: string, workerId: string): string =>
  path.join(stateDir, 'checkpoints', workerId);

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
});
export type WorkerSpec = z.output<typeof SpecSchema>;

export const PidSchema = z.object({
  pid: z.number().int(),
  pgid: z.number().int(),
  shimPid: z.number().int(),
  startedAt: z.string(),
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
});
export type ExitRecord = z.output<typeof ExitSchema>;

export function readPid(dir: string): z.output<typeof PidSchema> | null {
  const r = readStateFile(path.join(dir, 'pid.json'), PidSchema);
  return r.ok ? r.value : null;
}

export function readExit(dir: string): ExitRecord | null {
  const r = readStateFile(path.join(dir, 'exit.json'), ExitSchema);
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
  for (const f of ['pid.json', 'exit.json', 'kill-reason.json']) fs.rmSync(path.join(dir, f), { force: true });
}

export function listWorkerDirs(stateDir: string): string[] {
  try {
    return fs.readdirSync(path.join(stateDir, 'workers')).map((d) => path.join(stateDir, 'workers', d));
  } catch {
    return [];
  }
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
    : path.join(checkpointDir(config.stateDir, w.id), 'progress.json');
}
