import { z } from 'zod';
import { ProgressFieldsSchema } from './worker/progress-fields';
import type { DaemonName } from './event-kinds';

// The names and shapes of the state files in <stateDir>. Each daemon writes
// its own; swarm_control_state.json gathers them all in one.

export const DAEMON_STATE_FILES: Record<DaemonName, string> = {
  watchdog: 'watchdog_state.json',
  'worker-sentry': 'worker_sentry_state.json',
  'hang-guard': 'hang_guard_state.json',
  'util-controller': 'util_controller_state.json',
  'session-state-manager': 'session_state_manager_state.json',
  'orchestrator-consensus': 'orchestrator_consensus_state.json',
  'operator-gateway': 'operator_gateway_state.json',
};
export const CONTROL_STATE_FILE = 'swarm_control_state.json';
export const SESSION_LATEST_FILE = 'session_latest.json';
export const sessionHeartbeatFile = (runId: string): string => `session_state_${runId}.jsonl`;

export const SessionLatestSchema = z.looseObject({
  runId: z.string(),
  status: z.string(),
  updatedAt: z.string(),
  nextSteps: z.array(z.string()),
});
export const ControlStateSchema = z.looseObject({
  schemaVersion: z.literal(1),
  generatedAt: z.string(),
  daemons: z.array(z.unknown()),
  workers: z.array(z.unknown()),
});

export const DAEMON_LIFECYCLES = ['starting', 'running', 'stopping', 'stopped', 'errored'] as const;
export type DaemonLifecycle = (typeof DAEMON_LIFECYCLES)[number];

export const DaemonHeaderSchema = z.looseObject({
  daemon: z.string(),
  pid: z.number().int(),
  runId: z.string(),
  lifecycle: z.enum(DAEMON_LIFECYCLES),
  startedAt: z.string(),
  lastTickAt: z.string().nullable(),
  tickMs: z.number(),
  ticks: z.number().int(),
  restarts: z.number().int(),
});
export type DaemonHeader = z.output<typeof DaemonHeaderSchema>;

export const WORKER_STATUSES = [
  'starting',
  'running',
  'stale',
  'backoff',
  'quarantined',
  'completed',
  'failed',
  'stopped',
] as const;
export type WorkerStatus = (typeof WORKER_STATUSES)[number];

export const WorkerViewSchema = z.object({
  id: z.string(),
  job: z.string(),
  taskId: z.string().nullable(),
  lane: z.string(),
  status: z.enum(WORKER_STATUSES),
  pid: z.number().int().nullable(),
  attempt: z.number().int(),
  restarts: z.number().int(),
  startedAt: z.string().nullable(),
  lastProgressAt: z.string().nullable(),
  progressAgeMs: z.number().nullable(),
  /** When its output log last grew: what shows a worker without a progress file is doing something. */
  lastOutputAt: z.string().nullable().default(null),
  cpuPct: z.number().nullable(),
  memBytes: z.number().nullable(),
  gpus: z.array(z.number()),
  /** What the worker reports in its progress JSON, with `summary` ("21/50 best=0.031 (in_progress)") and `etaMs`. */
  progress: ProgressFieldsSchema.extend({ summary: z.string(), etaMs: z.number().nullable() }).nullable().default(null),
  /** A slurm lane's worker: its batch job, the node it runs on and SLURM's state and reason. */
  slurm: z
    .object({ jobId: z.string(), node: z.string().nullable(), state: z.string(), reason: z.string() })
    .nullable()
    .default(null),
});
export type WorkerView = z.output<typeof WorkerViewSchema>;

export const IncidentSchema = z.object({
  id: z.number().int(),
  class: z.string(),
  target: z.string(),
  status: z.enum(['open', 'remediating', 'resolved', 'escalated']),
  openedAt: z.string(),
  closedAt: z.string().nullable(),
  actions: z.array(z.number().int()),
});
export type Incident = z.output<typeof IncidentSchema>;

export const EscalationSchema = z.object({
  id: z.number().int(),
  target: z.string(),
  reason: z.string(),
  raisedAt: z.string(),
  status: z.enum(['open', 'resolved']),
});
export type Escalation = z.output<typeof EscalationSchema>;

/** orchestrator-consensus's scores (lib/consensus/scores.ts), in its state file and in query. */
export const ScoresSchema = z.object({
  at: z.string(),
  deviation: z.number(),
  performance: z.object({ tasksPerHour: z.number(), advancingPct: z.number().nullable() }),
  efficiency: z.number(),
  inputs: z.object({
    cpuPct: z.number().nullable(),
    memPct: z.number(),
    busySlots: z.number(),
    slots: z.number(),
    restartsLastHour: z.number(),
  }),
});
export type Scores = z.output<typeof ScoresSchema>;
