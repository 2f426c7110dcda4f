import { splitSecrets, workerEnv } from '../worker-env';
import { iso } from '../clock';
import { interpolate, type CompiledJob } from '../config/config';
import type { DaemonContext } from '../daemon-runtime';
import type { Target } from '../event-kinds';
import { isStopped, processTree } from '../proc';
import { setTaskStatus } from '../task-queue';
import type { SentryHost } from './sentry-host';
import { taskResult } from './task-result';
import { converged } from './plateau';
import { readCmdline } from '../proc';
import { runVerify, type VerifyResult } from './verify-guard';
import { readSpec, workerDirOf } from '../worker/files';
import { IDLE, type WorkerRecord } from '../worker/record';

// The loops users once ran by hand around their jobs, as worker-sentry runs
// them: a task's own validation after it says done, freeing a lock that a
// stale worker of ours holds, and what to do when a metric stops improving.

export class WorkChecks {
  constructor(private readonly host: SentryHost) {}

  private readonly verifications = new Map<string, Promise<VerifyResult>>();
  private readonly verified = new Map<string, VerifyResult>();

  startVerify(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob): void {
    if (!job.verify || this.verifications.has(w.id)) return;
    const spec = readSpec(workerDirOf(ctx.config, w));
    const vars = { taskId: w.taskId ?? '', workerId: w.id, attempt: w.attempt };
    // spec.json holds secret-named variables by name only; the guard gets their values as the worker did.
    const env = { ...(spec?.env ?? {}), ...splitSecrets(workerEnv(process.env, job, {})).secret };
    const p = runVerify(
      job.verify.command.map((a) => interpolate(a, vars)),
      { cwd: job.cwd, env, timeoutMs: job.verify.timeoutMs },
    );
    this.verifications.set(w.id, p);
    void p.then((r) => this.verified.set(w.id, r));
  }

  async settleVerify(ctx: DaemonContext, w: WorkerRecord, now: number): Promise<void> {
    const job = ctx.config.jobs[w.job];
    if (!job || !w.taskId) return;
    const r = this.verified.get(w.id);
    if (!r) {
      this.startVerify(ctx, w, job); // after a sentry restart the guard runs again
      return;
    }
    this.verified.delete(w.id);
    this.verifications.delete(w.id);
    this.host.setInFlight(ctx, w, IDLE);
    const guard = { exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, output: r.output };
    if (r.ok) {
      this.host.finishPending(ctx, w, 'verified', { message: 'task completed and its validation passed' });
      this.host.move(ctx, w, 'completed', 'exit 0, validation passed');
      setTaskStatus(ctx.db, ctx.run.id, w.taskId, 'completed', iso(now));
      const runtimeMs = w.launchedAt === null ? null : ctx.clock.now() - w.launchedAt;
      ctx.log.append({
        kind: 'task.completed',
        target: `task:${w.taskId}`,
        data: {
          workerId: w.id,
          attempt: w.attempt,
          runtimeMs,
          ...taskResult(ctx.config, job, w),
          verify: guard,
          message: `task ${w.taskId} completed on attempt ${w.attempt}; validation passed`,
        },
      });
      this.host.closeIncidents(w, 'resolved', now);
      return;
    }
    ctx.log.append({
      kind: 'task.failed',
      target: `task:${w.taskId}`,
      severity: 'warn',
      data: {
        workerId: w.id,
        attempt: w.attempt,
        class: 'validation_failed',
        verify: guard,
        message: `task ${w.taskId} said done, but its validation failed (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''})`,
      },
    });
    this.host.finishPending(ctx, w, 'failed', { message: 'validation failed after the restart' });
    await this.host.remediate(
      ctx,
      w,
      job,
      'validation_failed',
      'restart',
      { verify: guard, message: `validation failed: exit ${r.exitCode}${r.timedOut ? ' (timed out)' : ''}` },
      now,
    );
  }

  /** Our worker whose process tree holds this pid, other than the blocked one. */
  private workerHolding(blocked: WorkerRecord, holderPid: number): WorkerRecord | undefined {
    return [...this.host.workers.values()].find(
      (o) =>
        o !== blocked &&
        o.pid !== null &&
        (o.pid === holderPid || o.pgid === holderPid || processTree(o.pid).includes(holderPid)),
    );
  }

  /**
   * Who holds the lock, as the tuning loop told the person: the pid, its
   * command line, and whether it is a worker of this swarm. Goes into the
   * detection, and through its message into the escalation and next steps.
   */
  lockHolder(blocked: WorkerRecord, holderPid: number): { evidence: Record<string, unknown>; text: string } | null {
    if (!holderPid) return null;
    const ours = this.workerHolding(blocked, holderPid);
    const command = readCmdline(holderPid);
    const who = `pid ${holderPid}${command ? ` (${command})` : ' (gone)'}`;
    return {
      evidence: { holderCommand: command, holderWorker: ours?.id ?? null, holderIsOurs: ours !== undefined },
      text: ours
        ? `the lock is held by ${who}, worker ${ours.id} of this swarm`
        : `the lock is held by ${who}, not a worker of this swarm: end it or wait for it`,
    };
  }

  /** A lock held by another worker of ours that has gone stale: restart the holder, so the lock is freed. */
  async freeLock(ctx: DaemonContext, blocked: WorkerRecord, holderPid: number, incidentId: number): Promise<void> {
    if (!holderPid) return;
    const holder = this.workerHolding(blocked, holderPid);
    // Stale: judged so already, or SIGSTOPped, or past half its progress limit.
    const staleAfter = ctx.config.jobs[holder?.job ?? '']?.progress?.staleAfterMs ?? Infinity;
    const stale =
      holder &&
      (holder.status === 'stale' ||
        (holder.pid !== null && isStopped(holder.pid)) ||
        (holder.lastProgressAt !== null && ctx.clock.now() - holder.lastProgressAt > staleAfter / 2));
    if (!holder || !stale) return;
    const job = ctx.config.jobs[holder.job];
    if (!job) return;
    await this.host.act(
      ctx,
      holder,
      job,
      {
        cls: 'lock_conflict',
        incidentId,
        reason: `stale, and holds the lock that blocks ${blocked.id}`,
        ruleAction: 'restart',
      },
      ctx.clock.now(),
    );
  }

  /** Convergence: the metric reached plateau.target; the worker is ended and its exit counts as the task's success. */
  async converge(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob): Promise<boolean> {
    const metric = w.progress?.metric;
    if (!job.plateau || metric === undefined || w.taskId === null || w.inFlight.kind === 'stopping') return false;
    const why = converged(metric, job.plateau);
    if (!why) return false;
    ctx.log.append({
      kind: 'task.converged',
      target: `task:${w.taskId}`,
      data: {
        workerId: w.id,
        attempt: w.attempt,
        metric,
        target: job.plateau.target,
        tolerance: job.plateau.tolerance,
        message: `task ${w.taskId} converged: ${why}; stopping it as completed`,
      },
    });
    this.host.setInFlight(ctx, w, { kind: 'stopping', why: 'converge', restartAt: null });
    await this.host.stopProcess(ctx, w, job);
    return true;
  }

  async onPlateau(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob, why: string, now: number): Promise<void> {
    const rule = job.plateau;
    if (!rule) return;
    const target: Target = `worker:${w.id}`;
    const next = w.strategy + 1;
    const canRotate = rule.action === 'rotate' && next < job.strategies.length;
    const d = ctx.log.append({
      kind: 'detect.plateau',
      target,
      severity: 'warn',
      data: {
        class: 'plateau',
        best: w.plateau.best,
        updates: w.plateau.updatesSinceImprovement,
        strategy: w.strategy,
        action: rule.action,
        message: why,
      },
    });
    this.host.openIncident(w, d.seq, 'plateau', target, now);
    if (canRotate) {
      w.strategy = next;
      return this.host.act(
        ctx,
        w,
        job,
        {
          cls: 'plateau',
          incidentId: d.seq,
          reason: `${why}: rotating to strategy ${next} (${(job.strategies[next] ?? []).join(' ')})`,
          ruleAction: 'restart',
        },
        now,
      );
    }
    if (rule.action === 'stop')
      return this.host.act(
        ctx,
        w,
        job,
        { cls: 'plateau', incidentId: d.seq, reason: `${why}: stopping`, ruleAction: 'stop' },
        now,
      );
    this.host.raiseEscalation(
      ctx,
      w,
      `plateau: ${why}${rule.action === 'rotate' ? '; no strategy left to rotate to' : ''}`,
      d.seq,
    );
  }
}
