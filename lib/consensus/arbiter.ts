import type { ProposalRow } from '../actions/proposals';

// The rules of arbitration, pure so every one is tested on its own:
//   - one actor per target (an existing lease denies);
//   - duplicates on one target merge into one action (restart subsumes stop);
//   - safety before recovery before capacity, then oldest first;
//   - a global limit on automatic actions in flight (safety exempt);
//   - pause mode and an open circuit breaker deny all but safety;
//   - a half-open breaker lets one trial action through at a time.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface ArbiterInput {
  pending: ProposalRow[];
  leases: Map<string, { holder: string; actionId: number | null }>;
  inFlight: number;
  maxConcurrent: number;
  paused: boolean;
  breaker: BreakerState;
  breakerEscalationId: number | null;
  halfOpenTrialInFlight: boolean;
}

export interface Verdict {
  actionId: number;
  actor: string;
  target: string;
  grant: boolean;
  reason: string;
  /** This grant is the half-open breaker's trial. */
  trial: boolean;
}

const PRIORITY_RANK = { safety: 0, recovery: 1, capacity: 2 } as const;
// Within one target, the action that does the most wins: a restart also stops.
const TYPE_RANK: Record<string, number> = {
  quarantine: 0,
  restart_worker: 1,
  restart_daemon: 1,
  stop_worker: 2,
  terminate_query: 2,
};

const byUrgency = (a: ProposalRow, b: ProposalRow): number =>
  PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || a.createdAt - b.createdAt || a.actionId - b.actionId;

export function arbitrate(input: ArbiterInput): Verdict[] {
  const out: Verdict[] = [];
  const groups = new Map<string, ProposalRow[]>();
  for (const p of input.pending) groups.set(p.target, [...(groups.get(p.target) ?? []), p]);
  const winners: ProposalRow[] = [];
  for (const group of groups.values()) {
    const sorted = [...group].sort(
      (a, b) =>
        PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] ||
        (TYPE_RANK[a.type] ?? 9) - (TYPE_RANK[b.type] ?? 9) ||
        byUrgency(a, b),
    );
    const [winner, ...rest] = sorted as [ProposalRow, ...ProposalRow[]];
    winners.push(winner);
    for (const loser of rest) {
      out.push({
        actionId: loser.actionId,
        actor: loser.actor,
        target: loser.target,
        grant: false,
        trial: false,
        reason: `merged into action ${winner.actionId} (${winner.type} by ${winner.actor})`,
      });
    }
  }
  let inFlight = input.inFlight;
  let trialTaken = input.halfOpenTrialInFlight;
  for (const p of winners.sort(byUrgency)) {
    const deny = (reason: string) =>
      out.push({ actionId: p.actionId, actor: p.actor, target: p.target, grant: false, trial: false, reason });
    const lease = input.leases.get(p.target);
    if (lease && lease.holder !== p.actor) {
      deny(`target is leased by ${lease.holder} for action ${lease.actionId}`);
      continue;
    }
    const safety = p.priority === 'safety';
    if (!safety && input.paused) {
      deny('swarm is paused: only safety actions run');
      continue;
    }
    if (!safety && input.breaker === 'open') {
      deny(`circuit breaker open: swarm degraded; a person must ack escalation ${input.breakerEscalationId}`);
      continue;
    }
    let trial = false;
    if (!safety && input.breaker === 'half-open') {
      if (trialTaken) {
        deny('circuit breaker half-open: one trial action at a time');
        continue;
      }
      trial = true;
      trialTaken = true;
    }
    if (!safety && inFlight >= input.maxConcurrent) {
      deny(`concurrency limit reached: ${inFlight} automatic actions in flight (max ${input.maxConcurrent})`);
      continue;
    }
    if (!safety) inFlight += 1;
    out.push({
      actionId: p.actionId,
      actor: p.actor,
      target: p.target,
      grant: true,
      trial,
      reason: trial ? 'half-open trial' : 'granted',
    });
  }
  return out;
}
