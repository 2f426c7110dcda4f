import { IllegalTransitionError } from '../errors';
import type { Logger } from '../logger';
import type { WorkerStatus } from '../state-files';
import type { InFlight } from './record';

// A worker's lifecycle: one union (WorkerStatus), the table of legal moves,
// and the one setter every daemon goes through. The record is plain data
// (persisted in worker_sentry_state.json), so this is a function over it
// rather than lib/lifecycle.ts's object, with the same rule: each change is
// logged, an illegal one is refused with an IllegalTransitionError.
//
//   starting -> running -> stale -> running           progress resumed
//   starting|running|stale -> backoff -> starting     failure, restart after delay
//   any live -> completed | failed                    a task's exit 0 / final failure
//   any -> quarantined -> backoff                     budget spent or deterministic; `ack` releases it
//   any -> stopped -> backoff -> starting             `swarmctl stop`, then `swarmctl restart`

export const WORKER_MOVES: Record<WorkerStatus, readonly WorkerStatus[]> = {
  starting: ['running', 'stale', 'backoff', 'completed', 'failed', 'quarantined', 'stopped'],
  running: ['stale', 'backoff', 'completed', 'failed', 'quarantined', 'stopped'],
  stale: ['running', 'backoff', 'completed', 'failed', 'quarantined', 'stopped'],
  backoff: ['starting', 'quarantined', 'stopped', 'failed'],
  quarantined: ['backoff', 'starting', 'stopped'],
  stopped: ['starting', 'backoff'],
  completed: [],
  failed: [],
};

export const ACTIVE_STATUSES: readonly WorkerStatus[] = ['starting', 'running', 'stale', 'backoff'];
export const LIVE_STATUSES: readonly WorkerStatus[] = ['starting', 'running', 'stale'];

export const canMove = (from: WorkerStatus, to: WorkerStatus): boolean =>
  from === to || WORKER_MOVES[from].includes(to);

/**
 * Moves a worker to `to`, logging the change; staying put is no change.
 * Throws IllegalTransitionError for a move the table does not allow, and
 * leaves the record as it was.
 */
export function transition(
  w: { id: string; status: WorkerStatus },
  to: WorkerStatus,
  reason: string,
  logger: Logger,
): void {
  if (w.status === to) return;
  if (!WORKER_MOVES[w.status].includes(to)) throw new IllegalTransitionError(`worker ${w.id}`, w.status, to);
  logger.info({ worker: w.id, from: w.status, to, reason }, 'worker transition');
  w.status = to;
}

// The in-flight union (lib/worker/record.ts) has its own, smaller table: a
// verify guard's verdict is the one way out of `verifying`, and nothing but
// an exit seen by the sentry (which goes through `idle`) follows `stopping`
// into a relaunch or a verification.
export const IN_FLIGHT_MOVES: Record<InFlight['kind'], readonly InFlight['kind'][]> = {
  idle: ['backoff', 'awaiting-grant', 'stopping', 'verifying'],
  backoff: ['idle', 'awaiting-grant', 'stopping'],
  'awaiting-grant': ['idle', 'backoff', 'stopping'],
  stopping: ['idle', 'awaiting-grant'],
  verifying: ['idle'],
};

/**
 * Sets what Swarm has under way on a worker, logging the change. The same
 * kind again (a new backoff deadline, say) is always allowed. Throws
 * IllegalTransitionError for a move the table does not allow, and leaves the
 * record as it was.
 */
export function setInFlight(w: { id: string; inFlight: InFlight }, next: InFlight, logger: Logger): void {
  const from = w.inFlight.kind;
  if (from !== next.kind && !IN_FLIGHT_MOVES[from].includes(next.kind))
    throw new IllegalTransitionError(`worker ${w.id} in flight`, from, next.kind);
  if (from !== next.kind) logger.debug({ worker: w.id, from, to: next.kind }, 'worker in flight');
  w.inFlight = next;
}
