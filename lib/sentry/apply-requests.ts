import { Action } from '../actions/action';
import { iso } from '../clock';
import type { DaemonContext } from '../daemon-runtime';
import { setTaskStatus } from '../task-queue';
import type { ManualCommand } from '../worker/requests';
import type { SentryHost } from './sentry-host';
import { processRuns, type WorkerRecord } from '../worker/record';
import { canMove } from '../worker/lifecycle';

// Commands other actors hand worker-sentry, which alone touches worker
// processes: restart, stop and requeue from swarmctl, and util-controller's
// requeue under memory pressure. Each arrives as an action already granted;
// here it is started and, once its outcome shows, verified.

export class WorkerCommands {
  constructor(private readonly host: SentryHost) {}

  async apply(ctx: DaemonContext, cmd: ManualCommand): Promise<void> {
    cmd.done();
    const w = this.host.workers.get(cmd.workerId);
    const job = w ? ctx.config.jobs[w.job] : undefined;
    const deps = { ...this.host.actionDeps(ctx), actor: cmd.holder };
    const type = cmd.op === 'stop' ? 'stop_worker' : cmd.op === 'requeue' ? 'requeue_task' : 'restart_worker';
    const action = Action.resume(deps, {
      id: cmd.actionId,
      type,
      target: `worker:${cmd.workerId}`,
      incidentId: null,
      state: 'granted',
      proposedAt: ctx.clock.now(),
      startedAt: null,
    });
    if (!w || !job) return action.failed({ message: `no worker ${cmd.workerId}` });
    action.started({ attempt: w.attempt });
    w.pending = {
      id: cmd.actionId,
      type,
      incidentId: null,
      leaseHolder: cmd.holder,
      startedAt: ctx.clock.now(),
      verifyAttempt: w.attempt + 1,
      intent: cmd.op,
    };
    if (processRuns(w)) {
      this.host.setInFlight(ctx, w, {
        kind: 'stopping',
        why: cmd.op,
        restartAt: cmd.op === 'restart' ? ctx.clock.now() : null,
      });
      if (cmd.op === 'restart') this.host.move(ctx, w, 'backoff', `restart requested by ${cmd.holder}`);
      await this.host.stopProcess(ctx, w, job);
      return;
    }
    if (cmd.op === 'requeue') return this.requeue(ctx, w, ctx.clock.now());
    if (cmd.op === 'stop') {
      if (canMove(w.status, 'stopped')) this.host.move(ctx, w, 'stopped', 'stopped by swarmctl');
      this.host.finishPending(ctx, w, 'verified', { message: 'worker was not running; now stopped' });
      return;
    }
    // A stopped worker restarted goes through backoff too (stopped -> backoff -> starting), at once.
    if (canMove(w.status, 'backoff')) this.host.move(ctx, w, 'backoff', 'restart requested by swarmctl');
    this.host.setInFlight(ctx, w, { kind: 'backoff', until: ctx.clock.now() });
  }

  /** Back to the queue with its checkpoint: util-controller's answer to memory pressure. */
  requeue(ctx: DaemonContext, w: WorkerRecord, now: number): void {
    if (!w.taskId) {
      // A replica has no queue: it waits a stabilization-free backoff and runs again.
      this.host.move(ctx, w, 'backoff', 'requeued replica');
      this.host.setInFlight(ctx, w, {
        kind: 'backoff',
        until: now + (ctx.config.jobs[w.job]?.restart.delayMs ?? 1000),
      });
      this.host.finishPending(ctx, w, 'verified', { message: 'replica stopped; it runs again after its delay' });
      return;
    }
    taskBackInQueue(this.host, ctx, w, w.taskId, now, null);
    this.host.finishPending(ctx, w, 'verified', {
      message: `worker gone and task ${w.taskId} requeued with its checkpoint`,
    });
    this.host.closeIncidents(w, 'resolved', now);
    this.host.workers.delete(w.id);
  }
}

/**
 * A task's worker is gone and the task goes back to the queue, its
 * checkpoint kept; its attempt and restart counts carry over to its next
 * start (lane-filler.ts). `reason` says why where it is not a command.
 */
export function taskBackInQueue(
  host: SentryHost,
  ctx: DaemonContext,
  w: WorkerRecord,
  taskId: string,
  now: number,
  reason: string | null,
): void {
  host.requeuedCounts[taskId] = { attempt: w.attempt, restarts: w.restarts };
  setTaskStatus(ctx.db, ctx.run.id, taskId, 'queued', iso(now));
  ctx.log.append({
    kind: 'task.requeued',
    target: `task:${taskId}`,
    data: {
      workerId: w.id,
      attempt: w.attempt,
      checkpointKept: true,
      ...(reason ? { reason } : {}),
      message: `task ${taskId} back in the queue with its checkpoint${reason ? `: ${reason}` : ''}`,
    },
  });
}
