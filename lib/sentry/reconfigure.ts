import { Action } from '../actions/action';
import { iso } from '../clock';
import type { CompiledConfig, CompiledJob } from '../config/config';
import type { PublishedConfig } from '../config/reload';
import type { DaemonContext } from '../daemon-runtime';
import { enqueueTask, setTaskStatus, tasksWithStatus } from '../task-queue';
import type { SentryHost } from './sentry-host';
import { hasProcess, IDLE, type WorkerRecord } from '../worker/record';
import { ACTIVE_STATUSES } from '../worker/lifecycle';

// What a reload means for the workers (lib/config/reload.ts publishes it; each
// daemon applies it on its next tick). New jobs, lanes, policies and
// schedules need nothing here: the next tick reads them. New queue entries
// are queued. A removed job's queued tasks fail; its running task workers
// finish their task (the job is kept, retired, until they end), or with
// `reload --now` are stopped at once, as its replicas always are.

/** Queues the config's queue entries not yet in the run (at start, and after each reload). */
export function seedQueue(ctx: DaemonContext, config: CompiledConfig): void {
  for (const q of config.queue) {
    const lane = config.jobs[q.job]?.lane ?? 'cpu';
    if (
      enqueueTask(ctx.db, {
        runId: ctx.run.id,
        id: q.id,
        job: q.job,
        args: q.args,
        lane,
        queuedAt: iso(ctx.clock.now()),
        priority: q.priority,
        after: q.after,
      })
    ) {
      ctx.log.append({
        kind: 'task.queued',
        target: `task:${q.id}`,
        data: {
          job: q.job,
          lane,
          args: q.args,
          after: q.after,
          priority: q.priority,
          from: 'config',
          message: `task ${q.id} queued (${q.job})`,
        },
      });
    }
  }
}

export async function reconfigureSentry(
  host: SentryHost,
  ctx: DaemonContext,
  next: CompiledConfig,
  published: PublishedConfig,
): Promise<CompiledConfig> {
  const now = ctx.clock.now();
  const removed = Object.values(ctx.config.jobs).filter((j) => !(j.name in next.jobs));
  const kept: Record<string, CompiledJob> = {};
  for (const job of removed) {
    const reason = `job ${job.name} removed by a reload`;
    for (const t of tasksWithStatus(ctx.db, ctx.run.id, 'queued').filter((x) => x.job === job.name)) {
      setTaskStatus(ctx.db, ctx.run.id, t.id, 'failed', iso(now));
      ctx.log.append({
        kind: 'task.failed',
        target: `task:${t.id}`,
        severity: 'warn',
        data: { class: null, reason, message: `task ${t.id} will not run: ${reason}` },
      });
    }
    const active = [...host.workers.values()].filter((w) => w.job === job.name && ACTIVE_STATUSES.includes(w.status));
    if (active.length === 0) continue;
    kept[job.name] = { ...job, retired: true };
    for (const w of active) {
      // A task worker finishes its task unless --now; a replica never finishes, so it stops.
      if (published.now || w.taskId === null)
        await stopRetired(host, ctx, w, job, `${reason}${published.now ? ' (reload --now)' : ''}`, now);
    }
  }
  seedQueue(ctx, next);
  return { ...next, jobs: { ...next.jobs, ...kept } };
}

async function stopRetired(
  host: SentryHost,
  ctx: DaemonContext,
  w: WorkerRecord,
  job: CompiledJob,
  reason: string,
  now: number,
): Promise<void> {
  if (!hasProcess(w)) {
    host.move(ctx, w, 'stopped', reason);
    host.setInFlight(ctx, w, IDLE);
    if (w.taskId) setTaskStatus(ctx.db, ctx.run.id, w.taskId, 'failed', iso(now));
    return;
  }
  const action = await Action.propose(host.actionDeps(ctx), {
    type: 'stop_worker',
    target: `worker:${w.id}`,
    priority: 'recovery',
    reason,
    incidentId: null,
  });
  if (!action.granted) return;
  host.finishPending(ctx, w, 'failed', { message: `superseded by action ${action.id}` });
  action.started({ pid: w.pid, attempt: w.attempt });
  w.pending = {
    id: action.id,
    type: 'stop_worker',
    incidentId: null,
    leaseHolder: 'worker-sentry',
    startedAt: now,
    verifyAttempt: w.attempt + 1,
    intent: 'stop',
  };
  host.setInFlight(ctx, w, { kind: 'stopping', why: 'stop', restartAt: null });
  await host.stopProcess(ctx, w, job);
}
