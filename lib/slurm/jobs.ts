import os from 'node:os';
import { z } from 'zod';

// What SLURM says of a job, read from `squeue --json` (and `sacct --json`,
// where accounting is on), and what each of its end states means to
// worker-sentry. Pure: the commands that produce the text are slurm-cli.ts's.

export interface SlurmJob {
  jobId: string;
  /** SLURM's JOB_STATE, upper case: PENDING, RUNNING, COMPLETED, NODE_FAIL… */
  state: string;
  /** SLURM's Reason: why it pends (Resources, BeginTime…) or why it ended (NodeDown…); "None" when none. */
  reason: string;
  /** The node its batch script runs on, once it runs. */
  node: string | null;
  /** From SLURM's exit status, for a job whose shim wrote no exit.json. */
  exitCode: number | null;
  signal: string | null;
}

/** States a job leaves by itself; every other state is where it ended. */
const ACTIVE_STATES = new Set([
  'PENDING',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'STOPPED',
  'RESIZING',
  'SIGNALING',
  'STAGE_OUT',
  'REQUEUED',
  'REQUEUE_FED',
  'REQUEUE_HOLD',
  'RESV_DEL_HOLD',
  'SPECIAL_EXIT',
  // Swarm's own, until squeue has been asked: just submitted, or adopted from a worker folder.
  'SUBMITTED',
  'UNKNOWN',
]);

export function jobActive(state: string): boolean {
  return ACTIVE_STATES.has(state);
}

/**
 * How worker-sentry remedies a job that ended in this state, when Swarm did
 * not end it itself. null: the exit is the worker's own (COMPLETED, FAILED),
 * judged from the shim's exit.json like a local worker's.
 */
export type SlurmEnd =
  /** The cluster lost the node or took the job back: resubmitted without spending the restart budget. */
  | { kind: 'evicted'; class: 'node_failed' | 'preempted' }
  /** A limit the job ran into: remedied like the same failure of a local worker. */
  | { kind: 'limit'; class: 'runtime_exceeded' | 'worker_oom' }
  /** Cancelled by someone other than Swarm: stopped and recorded, never restarted. */
  | { kind: 'cancelled' };

export function slurmEnd(state: string): SlurmEnd | null {
  switch (state) {
    case 'NODE_FAIL':
    case 'BOOT_FAIL':
      return { kind: 'evicted', class: 'node_failed' };
    case 'PREEMPTED':
      return { kind: 'evicted', class: 'preempted' };
    case 'TIMEOUT':
    case 'DEADLINE':
      return { kind: 'limit', class: 'runtime_exceeded' };
    case 'OUT_OF_MEMORY':
      return { kind: 'limit', class: 'worker_oom' };
    case 'CANCELLED':
    case 'REVOKED':
      return { kind: 'cancelled' };
    default:
      return null;
  }
}

const SIGNAL_NAMES = Object.fromEntries(Object.entries(os.constants.signals).map(([name, n]) => [n, name]));

/** A wait status as squeue's JSON (openapi v0.0.38) gives it, or the newer {return_code, signal} object. */
function exitOf(raw: unknown): { exitCode: number | null; signal: string | null } {
  if (typeof raw === 'number') {
    const sig = raw & 0x7f;
    return sig
      ? { exitCode: null, signal: SIGNAL_NAMES[sig] ?? `SIG${sig}` }
      : { exitCode: (raw >> 8) & 0xff, signal: null };
  }
  if (raw && typeof raw === 'object') {
    const o = raw as { return_code?: unknown; signal?: { signal_id?: unknown } };
    const sig = typeof o.signal?.signal_id === 'number' ? o.signal.signal_id : 0;
    if (sig) return { exitCode: null, signal: SIGNAL_NAMES[sig] ?? `SIG${sig}` };
    return { exitCode: typeof o.return_code === 'number' ? o.return_code : null, signal: null };
  }
  return { exitCode: null, signal: null };
}

const Text = z.union([z.string(), z.number()]).transform(String);
/** 22.05 gives a string; later versions a list of state and flags. */
const JobState = z.union([z.string(), z.array(z.string()).min(1)]).transform((s) => (Array.isArray(s) ? s[0] : s));
const JobRow = z.looseObject({
  job_id: Text,
  job_state: JobState,
  state_reason: z.string().optional(),
  batch_host: z.string().optional(),
  nodes: z.string().optional(),
  exit_code: z.unknown().optional(),
});
const SqueueJson = z.looseObject({ jobs: z.array(JobRow) });

/** The jobs of `squeue --json` (or `sacct --json`, whose rows name the same fields under state.current). */
export function parseSqueueJson(text: string): SlurmJob[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  const r = SqueueJson.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`unexpected JSON at ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
  }
  return r.data.jobs.map((j) => ({
    jobId: j.job_id,
    state: (j.job_state ?? 'UNKNOWN').toUpperCase(),
    reason: j.state_reason ?? 'None',
    node: j.batch_host || j.nodes || null,
    ...exitOf(j.exit_code),
  }));
}

const SacctJson = z.looseObject({
  jobs: z.array(
    z.looseObject({
      job_id: Text,
      state: z.looseObject({ current: JobState, reason: z.string().optional() }),
      nodes: z.string().optional(),
      exit_code: z.unknown().optional(),
    }),
  ),
});

export function parseSacctJson(text: string): SlurmJob[] {
  const r = SacctJson.safeParse(JSON.parse(text));
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`unexpected JSON at ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
  }
  return r.data.jobs.map((j) => ({
    jobId: j.job_id,
    state: (j.state.current ?? 'UNKNOWN').toUpperCase(),
    reason: j.state.reason ?? 'None',
    node: j.nodes || null,
    ...exitOf(j.exit_code),
  }));
}

/**
 * One record of `scontrol show … -o`: KEY=VALUE pairs on one line, where a
 * value may hold spaces (OS=Linux 6.1 …): a pair ends where the next KEY= begins.
 */
export function parseScontrolLine(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z][A-Za-z0-9_:/]*)=(.*?)(?= [A-Za-z][A-Za-z0-9_:/]*=|\s*$)/g;
  for (const m of line.matchAll(re)) if (m[1]) out[m[1]] = (m[2] ?? '').trim();
  return out;
}

/**
 * The jobs of `scontrol show job -o`, one per line: what the sentry reads
 * when squeue cannot print JSON (a SLURM built without its JSON plugin).
 * ExitCode is CODE:SIGNAL.
 */
export function parseScontrolJobs(text: string): SlurmJob[] {
  return scontrolRecords(text, 'JobId').map((f) => {
    const [code, sig] = (f.ExitCode ?? '').split(':').map((n) => (/^\d+$/.test(n) ? Number(n) : null));
    const host = f.BatchHost && f.BatchHost !== '(null)' ? f.BatchHost : null;
    return {
      jobId: f.JobId ?? '?',
      state: (f.JobState ?? 'UNKNOWN').toUpperCase(),
      reason: f.Reason ?? 'None',
      node: host,
      ...(sig
        ? { exitCode: null, signal: SIGNAL_NAMES[sig] ?? `SIG${sig}` }
        : { exitCode: code ?? null, signal: null }),
    };
  });
}

/** The records of `scontrol show THING -o`, one a line, each starting with KEY=. */
export function scontrolRecords(text: string, key: string): Record<string, string>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map(parseScontrolLine);
}
