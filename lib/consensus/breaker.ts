import type { Db } from '../db';
import type { EventLog } from '../event-log';
import type { Logger } from '../logger';
import type { BreakerState } from './arbiter';
import { raiseEscalation, resolvedEscalations } from '../escalations';

// The circuit breaker: when failed verifications in a window reach a
// threshold, automatic actions other than safety stop and one escalation
// says "swarm degraded". A person's ack makes it half-open: one trial action
// may run; verified closes it, failed opens it again.
//
//   closed --failures >= threshold--> open --ack--> half-open --trial verified--> closed
//                                       ^                    |
//                                       +---trial failed-----+

export interface BreakerSnapshot {
  state: BreakerState;
  escalationId: number | null;
  trialActionId: number | null;
  /** Failures at or before this seq are forgiven (they led to the last opening). */
  sinceSeq: number;
}

export const initialBreaker = (): BreakerSnapshot => ({
  state: 'closed',
  escalationId: null,
  trialActionId: null,
  sinceSeq: 0,
});

export class CircuitBreaker {
  constructor(
    private snap: BreakerSnapshot,
    private readonly db: Db,
    private readonly log: EventLog,
    private readonly logger: Logger,
    private readonly runTarget: `run:${string}`,
    private readonly threshold: number,
    private readonly windowMs: number,
  ) {}

  get snapshot(): BreakerSnapshot {
    return { ...this.snap };
  }

  trialStarted(actionId: number): void {
    this.snap.trialActionId = actionId;
  }

  failuresInWindow(now: number): number {
    const since = new Date(now - this.windowMs).toISOString();
    return (
      this.db
        .prepare<[number, string], { n: number }>(
          "SELECT count(*) AS n FROM events WHERE kind = 'action.failed' AND source != 'swarmctl' AND seq > ? AND ts >= ?",
        )
        .get(this.snap.sinceSeq, since)?.n ?? 0
    );
  }

  evaluate(now: number): void {
    if (this.snap.state === 'closed') {
      const failures = this.failuresInWindow(now);
      if (failures >= this.threshold)
        this.open(`${failures} failed verifications in the last ${Math.round(this.windowMs / 1000)}s`);
      return;
    }
    if (this.snap.state === 'open' && this.snap.escalationId !== null && this.resolved(this.snap.escalationId)) {
      this.move('half-open', `escalation ${this.snap.escalationId} acknowledged`);
      this.snap.trialActionId = null;
      return;
    }
    if (this.snap.state === 'half-open' && this.snap.trialActionId !== null) {
      const outcome = this.db
        .prepare<[number], { kind: string }>(
          "SELECT kind FROM events WHERE action_id = ? AND kind IN ('action.verified', 'action.failed') ORDER BY seq LIMIT 1",
        )
        .get(this.snap.trialActionId)?.kind;
      if (outcome === 'action.verified') {
        this.snap.sinceSeq = this.lastSeq();
        this.snap.trialActionId = null;
        this.move('closed', 'trial action verified');
      } else if (outcome === 'action.failed') {
        this.snap.trialActionId = null;
        this.open('the half-open trial action failed');
      }
    }
  }

  private open(why: string): void {
    const e = raiseEscalation(this.log, {
      target: this.runTarget,
      reason: `swarm degraded: ${why}; automatic actions other than safety are held`,
      incidentId: null,
      data: { breaker: 'open' },
      message: `swarm degraded: ${why}`,
    });
    this.snap.escalationId = e.seq;
    this.snap.sinceSeq = e.seq;
    this.move('open', why);
    // The run's own word for it, which people subscribe to (notify's default `on`).
    this.log.append({
      kind: 'run.degraded',
      target: this.runTarget,
      severity: 'error',
      data: { reason: why, escalationId: e.seq, message: `swarm degraded: ${why}` },
    });
  }

  private move(to: BreakerState, reason: string): void {
    const from = this.snap.state;
    this.snap.state = to;
    this.logger.warn({ from, to, reason }, 'circuit breaker transition');
    this.log.append({
      kind: 'consensus.breaker',
      target: this.runTarget,
      severity: to === 'closed' ? 'info' : 'warn',
      data: { from, to, reason, message: `circuit breaker ${from} -> ${to}: ${reason}` },
    });
  }

  private resolved(escalationId: number): boolean {
    // Only what came after the escalation can resolve it.
    return resolvedEscalations(this.db, escalationId).some((r) => r.escalationId === escalationId);
  }

  private lastSeq(): number {
    return this.db.prepare<[], { m: number | null }>('SELECT max(seq) AS m FROM events').get()?.m ?? 0;
  }
}
