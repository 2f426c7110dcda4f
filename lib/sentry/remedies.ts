import { Action } from '../actions/action';
import { iso } from '../clock';
import type { CompiledJob } from '../config/config';
import type { DaemonContext } from '../daemon-runtime';
import { raiseEscalation, resolvedEscalations } from '../escalations';
import { EVICTION_CLASSES, type FailureClass, type Target } from '../event-kinds';
import { setTaskStatus } from '../task-queue';
import { hasProcess, IDLE, type FailureToRemedy, type WorkerRecord } from '../worker/record';
import type { RuleAction } from './classify';
import type { IncidentBook } from './incidents';
import { writeLastFailure } from './last-failure';
import { onFailure } from './restart-budget';
import type { SentryHost } from './sentry-host';
import type { WorkChecks } from './work-checks';

// worker-sentry's remedies: a failure is recorded (detect.CLASS, an
// incident), then answered within the job's policy: the next fallback tier,
// stagnation, a freed lock, quarantine, an escalation, or a restart or stop
// asked of orchestrator-consensus, carried out once granted and verified on
// the next attempt. A denied remedy is asked again later (the worker's
// in-flight `awaiting-grant`) under the same incident. Escalations a person acknowledged
// release quarantined workers here too.

export class Remedies {
  /** The last escalation.resolved seen, so each acknowledgement is applied once. */
  lastEscalationSeq = 0;

  constructor(
    private readonly host: SentryHost,
    private readonly incidents: IncidentBook,
    private readonly checks: WorkChecks,
  ) {}

  async remediate(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    cls: FailureClass,
    ruleAction: RuleAction,
    evidence: Record<string, unknown>,
    now: number,
  ): Promise<void> {
    const target: Target = `worker:${w.id}`;
    // Log tails can hold what a worker printed: the event log cuts secret values out of every event's data.
    const detect = ctx.log.append({
      kind: `detect.${cls}`,
      target,
      severity: 'warn',
      data: { class: cls, attempt: w.attempt, pid: w.pid, ...evidence },
    });
    this.incidents.open(detect.seq, cls, target, now);
    w.openIncidents.push(detect.seq);
    // A new failure ends whatever action was still waiting to be verified on this worker, and frees its lease.
    this.finishPending(ctx, w, 'failed', { message: `worker failed (${cls}) before it was verified` });
    w.failureCounts[cls] = (w.failureCounts[cls] ?? 0) + 1;
    const count = w.failureCounts[cls] ?? 0;
    writeLastFailure(ctx, w, cls, evidence, w.taskId && count >= job.stagnationAfter ? { repeated: cls, count } : null);
    const fallback = job.fallbacks[w.tier];
    if (fallback?.on.includes(cls)) {
      // The next tier is another way to the same result: switch to it instead of retrying this one.
      w.tier += 1;
      return this.act(
        ctx,
        w,
        job,
        {
          cls,
          incidentId: detect.seq,
          reason: `${cls} on tier ${w.tier - 1}: falling back to tier ${w.tier} (${fallback.command.join(' ')})`,
          ruleAction: 'restart',
        },
        now,
      );
    }
    if (w.taskId && !EVICTION_CLASSES.includes(cls) && (w.failureCounts[cls] ?? 0) >= job.stagnationAfter) {
      const st = ctx.log.append({
        kind: 'detect.stagnation',
        target,
        severity: 'error',
        data: {
          class: 'stagnation',
          repeated: cls,
          count: w.failureCounts[cls],
          lastEvidence: evidence,
          message: `${cls} ${w.failureCounts[cls]} times on task ${w.taskId}`,
        },
      });
      await this.host.stopProcess(ctx, w, job);
      return await this.quarantine(
        ctx,
        w,
        `stagnation: ${cls} ${w.failureCounts[cls]} times on task ${w.taskId} (last: ${String(evidence.message ?? '')})`,
        st.seq,
      );
    }
    if (cls === 'lock_conflict') await this.checks.freeLock(ctx, w, Number(evidence.holderPid ?? 0), detect.seq);
    if (ruleAction === 'quarantine')
      return await this.quarantine(
        ctx,
        w,
        `${cls}: restarting cannot help (${String(evidence.matchedLine ?? evidence.message ?? '')})`,
        detect.seq,
      );
    if (ruleAction === 'escalate') {
      this.raiseEscalation(ctx, w, `${cls}: ${String(evidence.message ?? '')}`, detect.seq);
      return;
    }
    await this.act(
      ctx,
      w,
      job,
      {
        cls,
        incidentId: detect.seq,
        reason: String(evidence.message ?? cls),
        ruleAction: ruleAction === 'stop' ? 'stop' : 'restart',
      },
      now,
    );
  }

  /** Asks for the remediation of one failure and carries it out; a denial is asked again later under the same incident. */
  async act(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob, f: FailureToRemedy, now: number): Promise<void> {
    // A lost node or a preemption is the cluster's doing: resubmitted at once, the budget untouched.
    const { decision, history } = EVICTION_CLASSES.includes(f.cls)
      ? { decision: { restart: true as const, delayMs: 0 }, history: w.history }
      : onFailure(job.restart, w.history, now);
    if (!decision.restart && f.ruleAction === 'restart') {
      w.history = history;
      if (w.inFlight.kind === 'awaiting-grant') this.host.setInFlight(ctx, w, IDLE);
      await this.host.stopProcess(ctx, w, job);
      return await this.quarantine(ctx, w, `${decision.reason}; last: ${f.reason}`, f.incidentId);
    }
    const type = f.ruleAction === 'stop' ? 'stop_worker' : 'restart_worker';
    const action = await Action.propose(this.host.actionDeps(ctx), {
      type,
      target: `worker:${w.id}`,
      priority: 'recovery',
      reason: f.reason,
      incidentId: f.incidentId,
    });
    this.incidents.addAction(f.incidentId, action.id);
    if (!action.granted) {
      // Asked again after a pause, not every tick; longer while the circuit breaker
      // is open, so a storm of failures makes no storm of proposals.
      const retryAt = now + (/breaker/.test(action.deniedReason ?? '') ? 20 : 5) * ctx.config.tickMs;
      this.host.setInFlight(ctx, w, { kind: 'awaiting-grant', failure: f, retryAt });
      if (!hasProcess(w) && w.status !== 'backoff')
        this.host.move(ctx, w, 'backoff', `waiting for a grant: ${action.deniedReason}`);
      return;
    }
    this.host.setInFlight(ctx, w, IDLE);
    this.finishPending(ctx, w, 'failed', { message: `superseded by action ${action.id}` });
    w.history = decision.restart ? history : w.history;
    action.started({ attempt: w.attempt, delayMs: decision.restart ? decision.delayMs : null });
    this.incidents.setStatus(f.incidentId, 'remediating');
    w.pending = {
      id: action.id,
      type,
      incidentId: f.incidentId,
      leaseHolder: 'worker-sentry',
      startedAt: now,
      verifyAttempt: w.attempt + 1,
      intent: f.ruleAction,
    };
    if (f.ruleAction === 'stop') {
      this.host.setInFlight(ctx, w, { kind: 'stopping', why: 'stop', restartAt: null });
      await this.host.stopProcess(ctx, w, job);
      return;
    }
    const restartAt = now + (decision.restart ? decision.delayMs : 0);
    this.host.setInFlight(
      ctx,
      w,
      hasProcess(w) ? { kind: 'stopping', why: 'restart', restartAt } : { kind: 'backoff', until: restartAt },
    );
    if (w.status !== 'backoff')
      this.host.move(ctx, w, 'backoff', `${f.cls}; restart in ${decision.restart ? decision.delayMs : 0}ms`);
    await this.host.stopProcess(ctx, w, job);
  }

  finishPending(
    ctx: DaemonContext,
    w: WorkerRecord,
    outcome: 'verified' | 'failed',
    evidence: Record<string, unknown>,
  ): void {
    const p = w.pending;
    if (!p) return;
    w.pending = null;
    const deps = { ...this.host.actionDeps(ctx), actor: p.leaseHolder };
    const target = (p.target ?? `worker:${w.id}`) as Target;
    const action = Action.resume(deps, {
      id: p.id,
      type: p.type as 'restart_worker',
      target,
      incidentId: p.incidentId,
      state: 'started',
      proposedAt: p.startedAt,
      startedAt: p.startedAt,
    });
    if (outcome === 'verified') action.verified(evidence);
    else action.failed(evidence);
  }

  async quarantine(ctx: DaemonContext, w: WorkerRecord, reason: string, incidentId: number | null): Promise<void> {
    const action = await Action.propose(this.host.actionDeps(ctx), {
      type: 'quarantine',
      target: `worker:${w.id}`,
      priority: 'safety',
      reason,
      incidentId,
    });
    this.incidents.addAction(incidentId, action.id);
    if (action.granted) action.started();
    this.host.move(ctx, w, 'quarantined', reason);
    if (w.taskId) setTaskStatus(ctx.db, ctx.run.id, w.taskId, 'quarantined', iso(ctx.clock.now()));
    this.raiseEscalation(ctx, w, reason, incidentId);
    if (action.granted)
      action.verified({ message: `worker ${w.id} quarantined; waiting for a person (swarmctl ack ${w.escalationId})` });
    this.host.closeIncidents(w, 'escalated', ctx.clock.now());
  }

  raiseEscalation(ctx: DaemonContext, w: WorkerRecord, reason: string, incidentId: number | null): void {
    const e = raiseEscalation(ctx.log, {
      target: `worker:${w.id}`,
      reason,
      incidentId,
      data: { workerId: w.id, taskId: w.taskId },
    });
    w.escalationId = e.seq;
  }

  applyEscalationAcks(ctx: DaemonContext): void {
    for (const r of resolvedEscalations(ctx.db, this.lastEscalationSeq)) {
      this.lastEscalationSeq = Math.max(this.lastEscalationSeq, r.seq);
      const w = [...this.host.workers.values()].find((x) => x.escalationId === r.escalationId);
      if (!w || w.status !== 'quarantined') continue;
      // A person looked at it: a fresh budget, and it may run again.
      w.history = { restartTimes: [], streak: 0, healthySince: null };
      w.escalationId = null;
      this.host.move(ctx, w, 'backoff', `escalation ${r.escalationId} acknowledged`);
      this.host.setInFlight(ctx, w, { kind: 'backoff', until: ctx.clock.now() });
      if (w.taskId) setTaskStatus(ctx.db, ctx.run.id, w.taskId, 'running', iso(ctx.clock.now()));
    }
  }
}
