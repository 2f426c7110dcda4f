// The vocabulary of the event log: every kind, failure class and action type
// a daemon may record. docs/events.md lists each, with who records it and its
// data (a test keeps the two in step); adding one is a deliberate act.

export const FAILURE_CLASSES = [
  'worker_crashed',
  'worker_oom',
  'crash_loop',
  'deterministic_failure',
  'progress_stale',
  'log_stalled',
  'startup_gate_missed',
  'artifact_missing',
  'runtime_exceeded',
  'gpu_fallback',
  'unexpected_gpu_context',
  'daemon_missing',
  'daemon_stale',
  'state_corrupt',
  'disk_low',
  'util_low',
  'memory_pressure',
  'no_workers',
  'run_stalled',
  'long_query',
  'validation_failed',
  'plateau',
  'stagnation',
  'lock_conflict',
  'lane_starved',
  'dependency_failed',
  'node_failed',
  'preempted',
  'pending_stuck',
  'job_cancelled',
] as const;

/**
 * Failures of the machine, not the work (a SLURM node lost, a job preempted):
 * the worker is resubmitted without spending its restart budget, as
 * Kubernetes reschedules an evicted pod, and they never make stagnation.
 */
export const EVICTION_CLASSES: readonly FailureClass[] = ['node_failed', 'preempted'];
export type FailureClass = (typeof FAILURE_CLASSES)[number];

export const ACTION_TYPES = [
  'restart_worker',
  'stop_worker',
  'launch_worker',
  'requeue_task',
  'quarantine',
  'restart_daemon',
  'start_daemon',
  'repair_state',
  'terminate_query',
  'pause_lane',
] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

export const DAEMON_NAMES = [
  'watchdog',
  'worker-sentry',
  'hang-guard',
  'util-controller',
  'session-state-manager',
  'orchestrator-consensus',
  'operator-gateway',
] as const;
export type DaemonName = (typeof DAEMON_NAMES)[number];
export const EVENT_SOURCES = [...DAEMON_NAMES, 'swarmctl', 'dashboard'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** Every kind but the detections, which are `detect.CLASS` for each failure class. */
export const EVENT_KINDS = [
  'daemon.started',
  'daemon.stopped',
  'action.proposed',
  'action.granted',
  'action.denied',
  'action.started',
  'action.verified',
  'action.failed',
  'escalation.raised',
  'escalation.resolved',
  'worker.launched',
  'worker.exited',
  'worker.adopted',
  'worker.lost',
  'worker.signal_refused',
  'task.queued',
  'task.started',
  'task.completed',
  'task.failed',
  'task.requeued',
  'task.converged',
  'run.started',
  'run.resumed',
  'run.completed',
  'run.paused',
  'run.unpaused',
  'run.degraded',
  'state.repaired',
  'consensus.scores',
  'consensus.breaker',
  'db.checked',
  'config.reloaded',
  'config.rejected',
  'schedule.fired',
  'schedule.skipped',
  'notify.failed',
] as const;

export type EventKind = (typeof EVENT_KINDS)[number] | `detect.${FailureClass}`;

export const SEVERITIES = ['debug', 'info', 'warn', 'error', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Targets are typed strings so a grep for "worker:" finds every event about workers. */
export type Target =
  | `worker:${string}`
  | `daemon:${string}`
  | `task:${string}`
  | `lane:${string}`
  | `run:${string}`
  | `state:${string}`
  | `query:${string}`
  | `job:${string}`
  | `notify:${string}`;

export interface NewEvent {
  kind: EventKind;
  target: Target;
  severity?: Severity;
  actionId?: number | null;
  data?: Record<string, unknown>;
}

export interface StoredEvent {
  seq: number;
  ts: string;
  runId: string;
  source: string;
  kind: string;
  target: string;
  severity: Severity;
  actionId: number | null;
  data: Record<string, unknown>;
  hash: string;
}
