import { Action, type ActionDeps } from '../actions/action';
import { iso } from '../clock';
import type { CompiledJob } from '../config/config';
import type { DaemonContext } from '../daemon-runtime';
import { getControl, setControl } from '../run-registry';
import { requestCommand } from '../worker/requests';
import { enqueueTask, getTask, setTaskStatus } from '../task-queue';
import { taskWorkerId } from '../worker-ids';
import { cronMatcher, latestFiring } from './cron-schedule';

// Nightly runs: each job with a `schedule` submits a task when its cron
// expression fires, as a Kubernetes CronJob creates a Job. What was fired
// last is kept in SQLite, written in the same transaction as the task, so a
// firing never happens twice, also across restarts. A firing missed while
// the swarm was down runs once at start within `startingDeadline`, else it
// is skipped and recorded. `concurrency` is the CronJob's policy: `forbid`
// (skip while the last firing's task is queued or running), `allow`, or
// `replace` (stop it, then fire).

interface ScheduleMark {
  /** Scheduled times up to here have been decided. */
  scannedTo: number;
  lastScheduledFor: number | null;
  lastTaskId: string | null;
}

const markKey = (job: string): string => `schedule:${job}`;
const compact = (ms: number): string =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** The task id of one firing: the job and the scheduled time, so a firing can only be queued once. */
export const firingTaskId = (job: string, scheduledForMs: number): string => `${job}-at-${compact(scheduledForMs)}`;

export class Scheduler {
  constructor(private readonly actionDeps: (ctx: DaemonContext) => ActionDeps) {}

  async tick(ctx: DaemonContext, now: number): Promise<void> {
    for (const [name, job] of Object.entries(ctx.config.jobs)) {
      if (job.schedule) await this.tickJob(ctx, name, job, job.schedule, now);
    }
  }

  private async tickJob(
    ctx: DaemonContext,
    name: string,
    job: CompiledJob,
    s: NonNullable<CompiledJob['schedule']>,
    now: number,
  ): Promise<void> {
    const raw = getControl(ctx.db, markKey(name));
    // First sight of a schedule: nothing before now is owed.
    const mark: ScheduleMark = raw
      ? (JSON.parse(raw) as ScheduleMark)
      : { scannedTo: now, lastScheduledFor: null, lastTaskId: null };
    if (!raw) setControl(ctx.db, markKey(name), JSON.stringify(mark));
    const due = latestFiring(cronMatcher(s.cron, s.timezone), mark.scannedTo, now);
    if (due === null) return;
    const target = `job:${name}` as const;
    const scheduledFor = iso(due);
    const lateMs = now - due;
    const skip = (reason: 'missed' | 'forbid', message: string) => {
      setControl(ctx.db, markKey(name), JSON.stringify({ ...mark, scannedTo: now }));
      ctx.log.append({
        kind: 'schedule.skipped',
        target,
        data: { scheduledFor, reason, lastTaskId: mark.lastTaskId, message },
      });
    };
    if (s.startingDeadlineMs !== null && lateMs > s.startingDeadlineMs) {
      return skip(
        'missed',
        `firing of ${scheduledFor} missed by ${Math.round(lateMs / 1000)}s, past startingDeadline ${Math.round(s.startingDeadlineMs / 1000)}s`,
      );
    }
    const last = mark.lastTaskId ? getTask(ctx.db, ctx.run.id, mark.lastTaskId) : null;
    const active = last !== null && (last.status === 'queued' || last.status === 'running');
    if (active && s.concurrency === 'forbid')
      return skip('forbid', `task ${last.id} of the last firing is still ${last.status} (concurrency forbid)`);
    let replaced: string | null = null;
    if (active && s.concurrency === 'replace') replaced = await this.replace(ctx, name, last.id, last.status);
    const taskId = firingTaskId(name, due);
    ctx.db
      .transaction(() => {
        enqueueTask(ctx.db, { runId: ctx.run.id, id: taskId, job: name, args: [], lane: job.lane, queuedAt: iso(now) });
        setControl(
          ctx.db,
          markKey(name),
          JSON.stringify({ scannedTo: now, lastScheduledFor: due, lastTaskId: taskId } satisfies ScheduleMark),
        );
      })
      .immediate();
    const late = lateMs > 2 * ctx.config.tickMs;
    ctx.log.append({
      kind: 'task.queued',
      target: `task:${taskId}`,
      data: {
        job: name,
        lane: job.lane,
        args: [],
        after: [],
        priority: 0,
        from: 'schedule',
        message: `task ${taskId} queued (${name}, schedule)`,
      },
    });
    ctx.log.append({
      kind: 'schedule.fired',
      target,
      data: {
        taskId,
        scheduledFor,
        late,
        replaced,
        message: `${name} fired for ${scheduledFor}${late ? ` (${Math.round(lateMs / 1000)}s late: missed while the swarm was down)` : ''}: task ${taskId}`,
      },
    });
  }

  /** concurrency replace: the last firing's task gives way, queued ones at once, running ones stopped by the sentry. */
  private async replace(ctx: DaemonContext, job: string, taskId: string, status: string): Promise<string> {
    if (status === 'queued') {
      setTaskStatus(ctx.db, ctx.run.id, taskId, 'failed', iso(ctx.clock.now()));
      ctx.log.append({
        kind: 'task.failed',
        target: `task:${taskId}`,
        data: {
          class: null,
          replacedBy: 'schedule',
          message: `task ${taskId} replaced by a newer firing of ${job} before it started`,
        },
      });
      return taskId;
    }
    const workerId = taskWorkerId(job, taskId);
    const a = await Action.propose(this.actionDeps(ctx), {
      type: 'stop_worker',
      target: `worker:${workerId}`,
      priority: 'recovery',
      reason: `a newer firing of ${job} replaces it (concurrency replace)`,
      incidentId: null,
    });
    if (a.granted) requestCommand(ctx.db, workerId, 'stop', a.id, 'session-state-manager');
    return taskId;
  }
}
