import { z } from 'zod';
import { ACTION_TYPES, EVENT_SOURCES, FAILURE_CLASSES } from '../event-kinds';
import { iso } from '../clock';
import { isAlive } from '../proc';
import { stillRuns, type ProcessIdentity } from '../process-identity';
import { describeProgress, etaMs, ProgressFieldsSchema } from './progress-fields';
import { jobActive } from '../slurm/jobs';
import { WORKER_STATUSES, type WorkerView } from '../state-files';

// The sentry's record of one worker slot (a replica or a task), persisted in
// worker_sentry_state.json so a restarted sentry carries on where it stopped.
//
// The lifecycle of `status` (its legal moves, the one setter) is lib/worker/lifecycle.ts.

const PendingActionSchema = z.object({
  id: z.number().int(),
  type: z.enum(ACTION_TYPES),
  incidentId: z.number().int().nullable(),
  /** The actor granted the action, which holds its lease until it is verified or failed. */
  leaseHolder: z.enum(EVENT_SOURCES),
  startedAt: z.number(),
  /** Launch time of the attempt that must prove the action worked. */
  verifyAttempt: z.number().int(),
  intent: z.enum(['restart', 'stop', 'requeue', 'launch']),
  /** What the action was proposed on, when not this worker: a lane fill holds the lane. */
  target: z.string().optional(),
});
export type PendingAction = z.output<typeof PendingActionSchema>;

/** A failure to remedy: what act() asks a grant for, and what waits for one after a denial. */
const FailureToRemedySchema = z.object({
  cls: z.enum(FAILURE_CLASSES),
  incidentId: z.number().int(),
  reason: z.string(),
  ruleAction: z.enum(['restart', 'stop']),
});
export type FailureToRemedy = z.output<typeof FailureToRemedySchema>;

/** Why Swarm is ending a worker's process: what its exit then means. `converge`: the task is done. */
export const STOP_REASONS = ['restart', 'stop', 'requeue', 'converge'] as const;
export type StopReason = (typeof STOP_REASONS)[number];

/**
 * What Swarm is in the middle of doing to a worker, beside its status: one
 * thing at a time, each with only the data it needs.
 *
 *   idle                nothing under way
 *   backoff             status backoff: launched again at `until` (lane-filler)
 *   awaiting-grant      a remedy was denied; asked again at `retryAt` under the same incident
 *   stopping            Swarm is ending the process for `why`; a restart relaunches at `restartAt`
 *   verifying           the task exited 0 and its verify guard runs; the worker is not judged meanwhile
 *
 * The granted action that must still be proved (`pending`) is not part of it:
 * its lease is held across several of these (stopping, backoff, the next
 * attempt's start) until the new attempt shows it worked.
 */
export const InFlightSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('idle') }),
  z.object({ kind: z.literal('backoff'), until: z.number() }),
  z.object({ kind: z.literal('awaiting-grant'), failure: FailureToRemedySchema, retryAt: z.number() }),
  z.object({ kind: z.literal('stopping'), why: z.enum(STOP_REASONS), restartAt: z.number().nullable() }),
  z.object({ kind: z.literal('verifying') }),
]);
export type InFlight = z.output<typeof InFlightSchema>;
export const IDLE: InFlight = { kind: 'idle' };

/** When a worker in backoff may start again (or be asked for again), or null while nothing is due. */
export function dueAt(w: { inFlight: InFlight }): number | null {
  switch (w.inFlight.kind) {
    case 'idle':
      return 0;
    case 'backoff':
      return w.inFlight.until;
    case 'awaiting-grant':
      return w.inFlight.retryAt;
    case 'stopping':
    case 'verifying':
      return null;
  }
}

/**
 * A record written before the in-flight union kept it as five side fields
 * (stopIntent, regrant, deniedUntil, backoffUntil, verifying): read into the
 * one field they meant, so a sentry upgraded mid-run carries on.
 */
export function migrateRecord(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || 'inFlight' in raw) return raw;
  const r = raw as Record<string, unknown>;
  const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
  let inFlight: unknown = IDLE;
  if (r.verifying === true) inFlight = { kind: 'verifying' };
  else if (typeof r.stopIntent === 'string')
    inFlight = {
      kind: 'stopping',
      why: r.stopIntent,
      restartAt: r.status === 'backoff' ? (num(r.backoffUntil) ?? 0) : null,
    };
  else if (r.regrant) inFlight = { kind: 'awaiting-grant', failure: r.regrant, retryAt: num(r.deniedUntil) ?? 0 };
  else if (r.status === 'backoff' && num(r.backoffUntil)) inFlight = { kind: 'backoff', until: num(r.backoffUntil) };
  return { ...r, inFlight };
}

/**
 * A slurm lane's worker is a batch job on another machine: its liveness is
 * the job's state, never a pid, and it is ended through scancel.
 */
const SlurmJobRecordSchema = z.object({
  jobId: z.string(),
  /** SLURM's JOB_STATE (SUBMITTED until squeue first lists it, UNKNOWN when adopted from a worker folder). */
  state: z.string(),
  /** SLURM's Reason: why it pends, or why it ended. */
  reason: z.string(),
  node: z.string().nullable(),
  submittedAt: z.number(),
  /** When the job was first seen ended without its exit.json: the shared folder gets a while to show it. */
  endSeenAt: z.number().nullable(),
  /** Swarm asked SLURM to end it (scancel): its CANCELLED is Swarm's doing, not a person's. */
  cancelRequested: z.boolean().default(false),
  /** When the shim was told to end its worker (scancel --signal=TERM --batch); null once the job was cancelled outright. */
  termSentAt: z.number().nullable().default(null),
});
export type SlurmJobRecord = z.output<typeof SlurmJobRecordSchema>;

const WorkerRecordFields = z.object({
  id: z.string(),
  job: z.string(),
  taskId: z.string().nullable(),
  slot: z.number().int().nullable(),
  lane: z.string(),
  status: z.enum(WORKER_STATUSES),
  attempt: z.number().int(),
  restarts: z.number().int(),
  pid: z.number().int().nullable(),
  pgid: z.number().int().nullable(),
  shimPid: z.number().int().nullable(),
  /** Who pid and shimPid are, as the kernel confirmed when Swarm first believed them; null: never confirmed, never signalled. */
  identity: z
    .object({ startTicks: z.number(), shimStartTicks: z.number(), bootId: z.string() })
    .nullable()
    .default(null),
  gpus: z.array(z.number().int()),
  launchedAt: z.number().nullable(),
  lastProgressAt: z.number().nullable(),
  progressMarker: z.string().nullable(),
  progressAdvancedSinceLaunch: z.boolean(),
  startupSeen: z.boolean(),
  /** When this attempt's startup marker appeared: with a startup gate, the progress clock starts here, not at launch. */
  startupSeenAt: z.number().nullable().default(null),
  logOffset: z.number(),
  logSize: z.number().nullable(),
  logChangedAt: z.number().nullable(),
  artifactsSeen: z.array(z.boolean()),
  history: z.object({
    restartTimes: z.array(z.number()),
    streak: z.number().int(),
    healthySince: z.number().nullable(),
  }),
  pending: PendingActionSchema.nullable(),
  inFlight: InFlightSchema,
  openIncidents: z.array(z.number().int()),
  escalationId: z.number().int().nullable(),
  detectedThisAttempt: z.array(z.string()),
  cpuTicks: z.number().nullable(),
  cpuSampledAt: z.number().nullable(),
  cpuPct: z.number().nullable(),
  memBytes: z.number().nullable(),
  lastExit: z
    .object({
      exitCode: z.number().nullable(),
      signal: z.string().nullable(),
      class: z.enum(FAILURE_CLASSES).nullable(),
    })
    .nullable(),
  /** 0: the job's own command; N: fallbacks[N-1]. */
  tier: z.number().int().default(0),
  /** Index into strategies of the argument set in use, or -1 for none. */
  strategy: z.number().int().default(-1),
  plateau: z
    .object({
      best: z.number().nullable(),
      updatesSinceImprovement: z.number().int(),
      lastImprovementAt: z.number().nullable(),
    })
    .default({ best: null, updatesSinceImprovement: 0, lastImprovementAt: null }),
  /** Failures of this task by class, over its whole life: the evidence for stagnation. */
  failureCounts: z.record(z.string(), z.number().int()).default({}),
  /** The valid optional fields of the latest progress JSON (iteration, total, metric, best, status, message). */
  progress: ProgressFieldsSchema.nullable().default(null),
  /** The first iteration this attempt reported, and when: the rate an ETA goes by. */
  progressStart: z.object({ iteration: z.number(), at: z.number() }).nullable().default(null),
  /** The progress JSON had a bad field this attempt: warned once. */
  progressWarned: z.boolean().default(false),
  /** On a slurm lane: the batch job of this attempt, as SLURM last reported it; null on a local lane. */
  slurm: SlurmJobRecordSchema.nullable().default(null),
});
export const WorkerRecordSchema = z.preprocess(migrateRecord, WorkerRecordFields);
export type WorkerRecord = z.output<typeof WorkerRecordFields>;

export function newWorkerRecord(p: {
  id: string;
  job: string;
  taskId: string | null;
  slot: number | null;
  lane: string;
  attempt?: number;
}): WorkerRecord {
  return {
    id: p.id,
    job: p.job,
    taskId: p.taskId,
    slot: p.slot,
    lane: p.lane,
    status: 'backoff',
    attempt: p.attempt ?? 0,
    restarts: 0,
    pid: null,
    pgid: null,
    shimPid: null,
    identity: null,
    gpus: [],
    launchedAt: null,
    lastProgressAt: null,
    progressMarker: null,
    progressAdvancedSinceLaunch: false,
    startupSeen: false,
    startupSeenAt: null,
    logOffset: 0,
    logSize: null,
    logChangedAt: null,
    artifactsSeen: [],
    history: { restartTimes: [], streak: 0, healthySince: null },
    pending: null,
    inFlight: IDLE,
    openIncidents: [],
    escalationId: null,
    detectedThisAttempt: [],
    cpuTicks: null,
    cpuSampledAt: null,
    cpuPct: null,
    memBytes: null,
    lastExit: null,
    tier: 0,
    strategy: -1,
    plateau: { best: null, updatesSinceImprovement: 0, lastImprovementAt: null },
    failureCounts: {},
    progress: null,
    progressStart: null,
    progressWarned: false,
    slurm: null,
  };
}

export const SentryBodySchema = z.preprocess(
  // Written as `carried` before it was named for what it holds.
  (raw) =>
    typeof raw === 'object' && raw !== null && 'carried' in raw && !('requeuedCounts' in raw)
      ? { ...raw, requeuedCounts: (raw as { carried: unknown }).carried }
      : raw,
  z.looseObject({
    workers: z.array(WorkerRecordSchema),
    /** Attempt and restart counts of tasks sent back to the queue, so SWARM_ATTEMPT keeps counting when they run again. */
    requeuedCounts: z
      .record(z.string(), z.object({ attempt: z.number().int(), restarts: z.number().int() }))
      .default({}),
  }),
);

/** The worker's process as it may be signalled, or null if the kernel never vouched for it. */
export function workerIdentity(w: WorkerRecord): ProcessIdentity | null {
  return w.pid !== null && w.identity
    ? { pid: w.pid, startTicks: w.identity.startTicks, bootId: w.identity.bootId }
    : null;
}

/** The worker still runs: its pid is alive and, where recorded, is still the process the kernel vouched for. */
export function workerAlive(w: WorkerRecord): boolean {
  if (w.pid === null || !w.identity) return isAlive(w.pid);
  return stillRuns({ pid: w.pid, startTicks: w.identity.startTicks, bootId: w.identity.bootId });
}

/** The shim still runs: its pid is alive and, where recorded, is still the process that started as our shim. */
export function shimAlive(w: WorkerRecord): boolean {
  if (w.shimPid === null || !w.identity) return isAlive(w.shimPid);
  return stillRuns({ pid: w.shimPid, startTicks: w.identity.shimStartTicks, bootId: w.identity.bootId });
}

/**
 * Swarm still has something running for this worker that must end before it
 * moves on: a local process Swarm knows the pid of, or a SLURM job that has
 * not ended.
 */
export function hasProcess(w: WorkerRecord): boolean {
  return w.slurm ? jobActive(w.slurm.state) : w.pid !== null;
}

/** As hasProcess, and for a local worker also still alive as far as the kernel vouches: what can be stopped now. */
export function processRuns(w: WorkerRecord): boolean {
  return w.slurm ? jobActive(w.slurm.state) : w.pid !== null && workerAlive(w);
}

/** The record of a batch job Swarm submitted (SUBMITTED) or adopted from a worker folder (UNKNOWN). */
export function newSlurmJob(
  jobId: string,
  submittedAt: number,
  seen: Pick<SlurmJobRecord, 'state' | 'reason' | 'node'>,
): SlurmJobRecord {
  return { jobId, submittedAt, ...seen, endSeenAt: null, cancelRequested: false, termSentAt: null };
}

export const pm2NameOf = (workerId: string): string => `swarm-worker-${workerId}`;

/** What `query` shows of a worker. */
export function toView(w: WorkerRecord, now: number): WorkerView {
  return {
    id: w.id,
    job: w.job,
    taskId: w.taskId,
    lane: w.lane,
    status: w.status,
    pid: w.pid,
    attempt: w.attempt,
    restarts: w.restarts,
    startedAt: w.launchedAt === null ? null : iso(w.launchedAt),
    lastProgressAt: w.lastProgressAt === null ? null : iso(w.lastProgressAt),
    progressAgeMs: w.lastProgressAt === null ? null : now - w.lastProgressAt,
    lastOutputAt: w.logChangedAt === null ? null : iso(w.logChangedAt),
    cpuPct: w.cpuPct,
    memBytes: w.memBytes,
    gpus: w.gpus,
    progress: w.progress
      ? { ...w.progress, summary: describeProgress(w.progress), etaMs: etaMs(w.progress, w.progressStart, now) }
      : null,
    slurm: w.slurm ? { jobId: w.slurm.jobId, node: w.slurm.node, state: w.slurm.state, reason: w.slurm.reason } : null,
  };
}
