import fs from 'node:fs';
import { z } from 'zod';
import type { TimerHandle } from '../clock';
import type { DaemonBehavior, DaemonContext } from '../daemon-runtime';
import { errorMessage } from '../errors';
import { SqliteLeaseStore } from '../actions/leases';
import { LEASE_TTL_MS } from '../actions/consensus-grantor';
import { watchDoorbell } from '../actions/doorbell';
import { decideProposal, pendingProposals, pruneProposals } from '../actions/proposals';
import { isPaused } from '../run-registry';
import { buildSnapshot } from '../snapshot';
import { DAEMON_STATE_FILES } from '../state-files';
import { arbitrate } from './arbiter';
import { CircuitBreaker, initialBreaker, type BreakerSnapshot } from './breaker';
import { computeScores, type Scores } from './scores';
import { CpuLoadMeter, memoryUsedPct } from '../machine-load';

// orchestrator-consensus: every actor's proposal is decided here, as soon as
// its proposer rings the doorbell, or at the latest within one decision
// cycle (DECIDE_EVERY_MS, well inside a tick). Decisions and the
// lease they grant are written in one transaction. Each tick it also runs the
// circuit breaker and writes the scores.

/** The fallback poll: proposals normally arrive by the doorbell (grants/doorbell.ts) and are decided at once. */
export const DECIDE_EVERY_MS = 250;
const SCORES_REFRESH_MS = 5000;

const SavedSchema = z.looseObject({
  runId: z.string(),
  breaker: z
    .object({
      state: z.enum(['closed', 'open', 'half-open']),
      escalationId: z.number().nullable(),
      trialActionId: z.number().nullable(),
      sinceSeq: z.number(),
    })
    .optional(),
});

export class OrchestratorConsensus implements DaemonBehavior {
  private timer: TimerHandle | null = null;
  private breaker: CircuitBreaker | null = null;
  private scores: Scores | null = null;
  private readonly cpu = new CpuLoadMeter();
  private scoredAt = -Infinity;
  private lastScoresLoggedAt = 0;
  private decided = { granted: 0, denied: 0, merged: 0 };
  private stopped = false;
  private bell: fs.FSWatcher | null = null;
  private rung = false;

  start(ctx: DaemonContext): void {
    // The breaker survives a restart of consensus: an open breaker must not close by crashing.
    const prev = ctx.state.read(DAEMON_STATE_FILES['orchestrator-consensus'], SavedSchema);
    const saved: BreakerSnapshot =
      prev.ok && prev.value.runId === ctx.run.id && prev.value.breaker ? prev.value.breaker : initialBreaker();
    const c = ctx.config.consensus;
    this.breaker = new CircuitBreaker(
      saved,
      ctx.db,
      ctx.log,
      ctx.logger,
      `run:${ctx.run.id}`,
      c.breakerFailures,
      c.breakerWindowMs,
    );
    this.listen(ctx);
    this.loop(ctx);
  }

  /** Decides as soon as a proposer rings; rings that come together make one cycle. */
  private listen(ctx: DaemonContext): void {
    const w = watchDoorbell(
      ctx.config.stateDir,
      () => {
        if (this.rung || this.stopped) return;
        this.rung = true;
        setImmediate(() => {
          this.rung = false;
          this.cycle(ctx);
        });
      },
      () => this.deafen(ctx, 'doorbell file removed or replaced'),
    );
    if ('error' in w) {
      ctx.logger.warn({ err: errorMessage(w.error) }, 'cannot watch the doorbell; deciding on the poll only');
      return;
    }
    this.bell = w.watcher;
    w.watcher.on('error', (err) => this.deafen(ctx, errorMessage(err)));
  }

  /** The watch hears nothing more: decide on the poll until the next tick listens again. */
  private deafen(ctx: DaemonContext, why: string): void {
    if (!this.bell) return;
    ctx.logger.warn({ why }, 'doorbell watch lost; listening again next tick');
    this.bell.close();
    this.bell = null;
  }

  private cycle(ctx: DaemonContext): void {
    if (this.stopped) return;
    try {
      this.decideOnce(ctx);
    } catch (err) {
      ctx.logger.error({ err: errorMessage(err) }, 'decision cycle failed');
    }
  }

  private loop(ctx: DaemonContext): void {
    if (this.stopped) return;
    this.cycle(ctx);
    this.timer = ctx.clock.setTimeout(() => this.loop(ctx), DECIDE_EVERY_MS);
  }

  /** One decision cycle over every pending proposal. */
  decideOnce(ctx: DaemonContext): void {
    if (pendingProposals(ctx.db).length === 0) return;
    const breaker = this.breaker?.snapshot ?? initialBreaker();
    const leases = new SqliteLeaseStore(ctx.db, () => ctx.clock.now());
    ctx.db
      .transaction(() => {
        const now = ctx.clock.now();
        const pending = pendingProposals(ctx.db);
        const active = ctx.db
          .prepare<[number], { target: string; holder: string; action_id: number | null; priority: string | null }>(
            'SELECT l.target, l.holder, l.action_id, p.priority FROM leases l LEFT JOIN proposals p ON p.action_id = l.action_id WHERE l.expires_at > ?',
          )
          .all(now);
        const verdicts = arbitrate({
          pending,
          leases: new Map(active.map((l) => [l.target, { holder: l.holder, actionId: l.action_id }])),
          inFlight: active.filter((l) => l.priority !== 'safety').length,
          maxConcurrent: ctx.config.consensus.maxConcurrentActions,
          paused: isPaused(ctx.db),
          breaker: breaker.state,
          breakerEscalationId: breaker.escalationId,
          halfOpenTrialInFlight: breaker.trialActionId !== null,
        });
        for (const v of verdicts) {
          if (v.grant) {
            const lease = leases.acquire(v.target, v.actor, v.actionId, LEASE_TTL_MS);
            if (!lease.ok) {
              decideProposal(
                ctx.db,
                v.actionId,
                'denied',
                'consensus',
                `target is leased by ${lease.heldBy.holder}`,
                now,
              );
              continue;
            }
            if (decideProposal(ctx.db, v.actionId, 'granted', 'consensus', v.reason, now)) {
              this.decided.granted += 1;
              if (v.trial) this.breaker?.trialStarted(v.actionId);
            }
          } else if (decideProposal(ctx.db, v.actionId, 'denied', 'consensus', v.reason, now)) {
            this.decided[v.reason.startsWith('merged') ? 'merged' : 'denied'] += 1;
          }
        }
      })
      .immediate();
  }

  tick(ctx: DaemonContext): void {
    const now = ctx.clock.now();
    if (this.bell === null && !this.stopped) this.listen(ctx);
    this.breaker?.evaluate(now);
    const c = ctx.config;
    // Scores read every state file and the task table: worth a refresh every few seconds, not
    // every tick (it was most of this daemon's idle CPU).
    let scores = this.scores;
    if (scores === null || now - this.scoredAt >= Math.max(c.tickMs, SCORES_REFRESH_MS)) {
      scores = computeScores(
        ctx.db,
        buildSnapshot(c, now),
        c.utilization,
        { cpuPct: this.cpu.sample(), memPct: memoryUsedPct() },
        now,
      );
      this.scores = scores;
      this.scoredAt = now;
    }
    if (now - this.lastScoresLoggedAt >= c.consensus.scoresEveryMs) {
      this.lastScoresLoggedAt = now;
      ctx.log.append({
        kind: 'consensus.scores',
        target: `run:${ctx.run.id}`,
        severity: 'debug',
        data: {
          ...scores,
          message: `deviation=${scores.deviation} tasks/h=${scores.performance.tasksPerHour} efficiency=${scores.efficiency}`,
        },
      });
    }
    pruneProposals(ctx.db, now - 3_600_000);
  }

  snapshot(): Record<string, unknown> {
    return {
      breaker: this.breaker?.snapshot ?? initialBreaker(),
      scores: this.scores,
      decided: this.decided,
      decideEveryMs: DECIDE_EVERY_MS,
      doorbell: this.bell ? 'listening' : 'polling',
    };
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.bell?.close();
  }
}
