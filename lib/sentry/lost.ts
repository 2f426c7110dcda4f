import type { DaemonContext } from '../daemon-runtime';
import { readExit } from '../worker/files';
import { LIVE_STATUSES } from '../worker/lifecycle';
import { shimAlive, workerAlive, type WorkerRecord } from '../worker/record';
import type { SentryHost } from './sentry-host';
import { taskBackInQueue } from './apply-requests';
import { readWorkerPid } from './worker-pid';

// A reboot, or PM2, the daemons and the workers killed together: the
// sentry's state file says a worker runs, but its process and its shim are
// gone and no exit was recorded. Nothing failed in the work itself, so it
// is not a crash and spends no budget: the task goes back to the queue with
// its checkpoint and runs again as attempt + 1 (a replica runs again at
// once). Only the sentry's start asks this: while it runs,
// a worker and shim that vanish together are a crash it saw happen.

/** Why, in worker.lost and task.requeued; session-state-manager's run.resumed lists the worker.lost events. */
export const LOST_REASON = 'lost while Swarm was down';

/** A local worker the state calls live, whose worker and shim both ended with no exit.json. */
export function lostWhileDown(w: WorkerRecord, dir: string): boolean {
  if (w.slurm || !LIVE_STATUSES.includes(w.status) || w.inFlight.kind === 'backoff') return false;
  let probe = w;
  if (w.pid === null) {
    // Launched, but the pid never reached the record: pid.json says which processes to ask about.
    const r = readWorkerPid(dir, w.id);
    if (r.kind !== 'gone') return false;
    probe = { ...w, ...r.fields };
  }
  return !workerAlive(probe) && !shimAlive(probe) && readExit(dir) === null;
}

export function requeueLost(host: SentryHost, ctx: DaemonContext, w: WorkerRecord, now: number): void {
  host.finishPending(ctx, w, 'failed', {
    message: `worker lost while Swarm was down, before attempt ${w.pending?.verifyAttempt ?? w.attempt} could be verified`,
  });
  host.closeIncidents(w, 'resolved', now);
  ctx.log.append({
    kind: 'worker.lost',
    target: `worker:${w.id}`,
    severity: 'warn',
    data: {
      taskId: w.taskId,
      attempt: w.attempt,
      pid: w.pid,
      reason: LOST_REASON,
      message: w.taskId
        ? `worker ${w.id} (attempt ${w.attempt}) lost while Swarm was down: task ${w.taskId} requeued with its checkpoint`
        : `replica ${w.id} (attempt ${w.attempt}) lost while Swarm was down: it runs again`,
    },
  });
  if (!w.taskId) {
    host.move(ctx, w, 'backoff', LOST_REASON);
    Object.assign(w, { pid: null, pgid: null, shimPid: null, identity: null });
    host.setInFlight(ctx, w, { kind: 'backoff', until: now });
    return;
  }
  taskBackInQueue(host, ctx, w, w.taskId, now, LOST_REASON);
  host.workers.delete(w.id);
}
