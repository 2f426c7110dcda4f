import path from 'node:path';
import { iso } from '../clock';
import type { CompiledJob } from '../config/config';
import type { DaemonContext } from '../daemon-runtime';
import { errorMessage } from '../errors';
import type { ProcessManager } from '../process-manager';
import { setTaskStatus } from '../task-queue';
import { readKillReason, workerDirOf, type ExitRecord } from '../worker/files';
import { readTail } from '../worker/read';
import { IDLE, pm2NameOf, type WorkerRecord } from '../worker/record';
import type { WorkerCommands } from './apply-requests';
import { classifyExit } from './classify';
import { exitOutcome, loopClass } from './exit-outcome';
import type { SentryHost } from './sentry-host';
import { taskResult } from './task-result';
import type { SlurmEnd } from '../slurm/jobs';
import type { WorkChecks } from './work-checks';

// A worker's exit, as worker-sentry handles it: recorded (worker.exited),
// decided by exitOutcome() and applied here in one switch; a plain failure
// is classified from the exit, its log tail and memory, then remedied.

export class ExitHandler {
  constructor(
    private readonly host: SentryHost,
    private readonly pm: ProcessManager,
    private readonly commands: WorkerCommands,
    private readonly checks: WorkChecks,
  ) {}

  async onExit(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    exit: ExitRecord,
    kernelOom: boolean,
    slurm: SlurmEnd | null = null,
  ): Promise<void> {
    const now = ctx.clock.now();
    const runtimeMs = w.launchedAt === null ? null : now - w.launchedAt;
    // Whatever was under way ends with the process; the outcome below says what comes next.
    const was = w.inFlight;
    const intent = was.kind === 'stopping' ? was.why : null;
    ctx.log.append({
      kind: 'worker.exited',
      target: `worker:${w.id}`,
      severity: exit.exitCode === 0 || intent ? 'info' : 'warn',
      data: {
        exitCode: exit.exitCode,
        signal: exit.signal,
        pid: w.pid,
        attempt: w.attempt,
        runtimeMs,
        requestedBy: intent ? 'swarm' : null,
        error: exit.error ?? null,
        message: `exited code=${exit.exitCode} signal=${exit.signal}${intent ? ` (${intent} requested)` : ''}`,
      },
    });
    // Awaited, so a relaunch in this same tick cannot race the removal of the old app. A slurm job has none.
    if (!w.slurm)
      await this.pm
        .delete(pm2NameOf(w.id))
        .catch((err: unknown) => ctx.logger.warn({ worker: w.id, err: errorMessage(err) }, 'pm2 delete failed'));
    const pid = w.pid;
    Object.assign(w, {
      pid: null,
      pgid: null,
      shimPid: null,
      identity: null,
      cpuPct: null,
      cpuTicks: null,
    });
    this.host.setInFlight(ctx, w, IDLE);
    const killed = readKillReason(workerDirOf(ctx.config, w));
    const outcome = exitOutcome({
      intent,
      exit,
      isTask: w.taskId !== null,
      hasVerify: job.verify !== null,
      kill: killed && killed.pid === pid ? killed : null,
      slurm,
      quarantined: w.status === 'quarantined',
    });
    switch (outcome.kind) {
      case 'quarantined':
        w.lastExit = { exitCode: exit.exitCode, signal: exit.signal, class: w.lastExit?.class ?? null };
        return;
      case 'stopped':
        this.host.move(ctx, w, 'stopped', 'stopped on request');
        this.host.finishPending(ctx, w, 'verified', { message: `worker stopped; pid ${pid} gone` });
        // Back in the queue, but held: fill() skips a task whose worker is stopped until `swarmctl restart`.
        // A removed job's task has nowhere to go back to.
        if (w.taskId) setTaskStatus(ctx.db, ctx.run.id, w.taskId, job.retired ? 'failed' : 'queued', iso(now));
        return;
      case 'requeued':
        return this.commands.requeue(ctx, w, now);
      case 'restart-requested':
        this.host.move(ctx, w, 'backoff', 'restart requested');
        this.host.setInFlight(ctx, w, {
          kind: 'backoff',
          until: (was.kind === 'stopping' ? was.restartAt : null) ?? now,
        });
        return;
      case 'stopped-through-pm2':
        this.host.move(ctx, w, 'backoff', 'stopped through PM2');
        this.host.setInFlight(ctx, w, { kind: 'backoff', until: now });
        return;
      case 'verify':
        w.lastExit = { exitCode: 0, signal: null, class: null };
        // "Done" is not done until the guard agrees; the worker stays running while it checks.
        this.host.setInFlight(ctx, w, { kind: 'verifying' });
        this.checks.startVerify(ctx, w, job);
        return;
      case 'completed':
        w.lastExit = { exitCode: 0, signal: null, class: null };
        return this.completeTask(ctx, w, job, runtimeMs, now);
      case 'replica-exited':
        w.lastExit = { exitCode: 0, signal: null, class: null };
        // A replica is kept alive for ever: relaunch it, without counting a failure.
        this.host.move(ctx, w, 'backoff', 'replica exited 0');
        this.host.setInFlight(ctx, w, { kind: 'backoff', until: now + job.restart.delayMs });
        return;
      case 'cluster-ended': {
        const s = w.slurm;
        w.lastExit = { exitCode: exit.exitCode, signal: exit.signal, class: outcome.cls };
        const where = s?.node ? ` on ${s.node}` : '';
        return this.host.remediate(
          ctx,
          w,
          job,
          outcome.cls,
          'restart',
          {
            jobId: s?.jobId ?? null,
            slurmState: s?.state ?? null,
            slurmReason: s?.reason ?? null,
            node: s?.node ?? null,
            exitCode: exit.exitCode,
            signal: exit.signal,
            message: `SLURM job ${s?.jobId ?? '?'} ended ${s?.state ?? '?'} (${s?.reason ?? '?'})${where}`,
          },
          now,
        );
      }
      case 'cancelled-outside':
        return this.onCancelledOutside(ctx, w, job, now);
      case 'ended-by': {
        // Another daemon already recorded the detection: remedy under its incident.
        const k = outcome.kill;
        w.lastExit = { exitCode: exit.exitCode, signal: exit.signal, class: k.class };
        this.host.openIncident(w, k.incidentId, k.class, `worker:${w.id}`, now);
        this.host.finishPending(ctx, w, 'failed', { message: `worker ended by ${k.by} before it was verified` });
        return this.host.act(
          ctx,
          w,
          job,
          { cls: k.class, incidentId: k.incidentId, reason: k.message, ruleAction: 'restart' },
          now,
        );
      }
      case 'failed':
        return this.onFailure(ctx, w, job, exit, pid, runtimeMs, kernelOom, now);
    }
  }

  /** A person (or another tool) cancelled the job: their call stands, so the worker stops and its task is held. */
  private onCancelledOutside(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob, now: number): void {
    const s = w.slurm;
    ctx.log.append({
      kind: 'detect.job_cancelled',
      target: `worker:${w.id}`,
      severity: 'warn',
      data: {
        class: 'job_cancelled',
        attempt: w.attempt,
        jobId: s?.jobId ?? null,
        slurmState: s?.state ?? null,
        slurmReason: s?.reason ?? null,
        message: `SLURM job ${s?.jobId ?? '?'} was cancelled outside Swarm: worker stopped, not restarted (swarmctl restart ${w.id} runs it again)`,
      },
    });
    w.lastExit = { exitCode: null, signal: null, class: 'job_cancelled' };
    this.host.finishPending(ctx, w, 'failed', { message: 'the SLURM job was cancelled outside Swarm' });
    this.host.move(ctx, w, 'stopped', 'slurm job cancelled outside Swarm');
    // Held in the queue as after `swarmctl stop`: a removed job's task has nowhere to go back to.
    if (w.taskId) setTaskStatus(ctx.db, ctx.run.id, w.taskId, job.retired ? 'failed' : 'queued', iso(now));
  }

  private completeTask(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    runtimeMs: number | null,
    now: number,
  ): void {
    const taskId = w.taskId as string;
    this.host.finishPending(ctx, w, 'verified', { message: `task ${taskId} completed on attempt ${w.attempt}` });
    this.host.move(ctx, w, 'completed', 'exit 0');
    setTaskStatus(ctx.db, ctx.run.id, taskId, 'completed', iso(now));
    ctx.log.append({
      kind: 'task.completed',
      target: `task:${taskId}`,
      data: {
        workerId: w.id,
        attempt: w.attempt,
        runtimeMs,
        ...taskResult(ctx.config, job, w),
        message: `task ${taskId} completed on attempt ${w.attempt}`,
      },
    });
    this.host.closeIncidents(w, 'resolved', now);
  }

  /** A plain failure: classified from the exit, the log tail and memory, then remedied. */
  private async onFailure(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    exit: ExitRecord,
    pid: number | null,
    runtimeMs: number | null,
    kernelOom: boolean,
    now: number,
  ): Promise<void> {
    const lastRss = w.memBytes;
    const c = classifyExit(job.failures, {
      exitCode: exit.exitCode,
      signal: exit.signal,
      logTail: readTail(path.join(workerDirOf(ctx.config, w), 'output.log')),
      lastRssBytes: lastRss,
      memoryLimitBytes: job.memoryLimitBytes,
      kernelOomKilled: kernelOom && exit.signal === 'SIGKILL',
    });
    w.lastExit = { exitCode: exit.exitCode, signal: exit.signal, class: c.class };
    this.host.finishPending(ctx, w, 'failed', {
      message: `worker failed again before it was verified (${c.class})`,
      exitCode: exit.exitCode,
      signal: exit.signal,
    });
    const cls = loopClass(c.class, w.history.streak);
    const holder = c.class === 'lock_conflict' ? this.checks.lockHolder(w, Number(c.evidence.holderPid ?? 0)) : null;
    const said =
      cls === 'crash_loop'
        ? `${w.history.streak + 1} failures in a row, last ${c.class} (code=${exit.exitCode} signal=${exit.signal})`
        : `${c.class}: code=${exit.exitCode} signal=${exit.signal}`;
    const message = holder ? `${said}; ${holder.text}` : said;
    await this.host.remediate(
      ctx,
      w,
      job,
      cls,
      c.action,
      { ...c.evidence, ...holder?.evidence, pid, underlying: c.class, runtimeMs, message },
      now,
    );
  }
}
