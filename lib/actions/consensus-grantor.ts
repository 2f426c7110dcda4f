import { LocalGrantor, type Decision, type Grantor, type Proposal } from './action';
import type { Clock } from '../clock';
import type { Db } from '../db';
import type { EventSource, Target } from '../event-kinds';
import type { LeaseStore } from './leases';
import { decideProposal, getProposal, insertProposal } from './proposals';
import { ringDoorbell } from './doorbell';

// The proposer's side of arbitration. It files the proposal for
// orchestrator-consensus and waits for the decision; if none comes within
// selfGrantAfterMs (consensus down, hung or overloaded), it decides itself
// under the lease, so the swarm keeps healing with `grantedBy: "self"`.
// Repairing orchestrator-consensus itself is never asked of it: the one
// time it is restarted is when it is down or frozen, and waiting out
// selfGrantAfter then only stalls the repairer's tick (long enough, with a
// busy database, for the repairer to look hung itself).

const CONSENSUS_TARGET = 'daemon:orchestrator-consensus';

export const LEASE_TTL_MS = 10 * 60_000;
const POLL_MS = 20;

export class ConsensusGrantor implements Grantor {
  private readonly local: LocalGrantor;

  constructor(
    private readonly db: Db,
    private readonly leases: LeaseStore,
    private readonly clock: Clock,
    isPaused: () => boolean,
    private readonly selfGrantAfterMs: number,
    private readonly stateDir: string,
  ) {
    this.local = new LocalGrantor(leases, isPaused, LEASE_TTL_MS);
  }

  async decide(actionId: number, p: Proposal, actor: EventSource): Promise<Decision> {
    insertProposal(this.db, {
      actionId,
      actor,
      type: p.type,
      target: p.target,
      priority: p.priority,
      createdAt: this.clock.now(),
    });
    if (p.target === CONSENSUS_TARGET)
      return this.selfDecide(actionId, p, actor, 'consensus does not arbitrate its own repair');
    ringDoorbell(this.stateDir);
    const deadline = this.clock.now() + this.selfGrantAfterMs;
    for (;;) {
      const row = getProposal(this.db, actionId);
      if (row && row.status !== 'pending') {
        return row.status === 'granted'
          ? { granted: true, grantedBy: 'consensus' }
          : { granted: false, reason: row.reason ?? 'denied', grantedBy: 'consensus' };
      }
      if (this.clock.now() >= deadline) break;
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, POLL_MS));
    }
    return this.selfDecide(actionId, p, actor, 'consensus did not answer');
  }

  /** Degraded mode: the same local rules (pause, one actor per target), recorded as `self`. */
  private selfDecide(actionId: number, p: Proposal, actor: EventSource, why: string): Decision {
    return this.db
      .transaction((): Decision => {
        const row = getProposal(this.db, actionId);
        if (row && row.status !== 'pending') {
          // Consensus answered in the last instant after all.
          return row.status === 'granted'
            ? { granted: true, grantedBy: 'consensus' }
            : { granted: false, reason: row.reason ?? 'denied', grantedBy: 'consensus' };
        }
        const d = this.local.decide(actionId, p, actor);
        decideProposal(
          this.db,
          actionId,
          d.granted ? 'granted' : 'denied',
          'self',
          d.granted ? why : d.reason,
          this.clock.now(),
        );
        return { ...d, grantedBy: 'self' };
      })
      .immediate();
  }

  release(target: Target, actor: EventSource): void {
    this.leases.release(target, actor);
  }
}
