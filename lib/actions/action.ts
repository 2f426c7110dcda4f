import type { ActionType, EventSource, Target } from '../event-kinds';
import type { EventLog } from '../event-log';
import { Lifecycle } from '../lifecycle';
import type { LeaseStore } from './leases';
import type { Logger } from '../logger';

// Every remediation goes through one lifecycle, each step an event:
//   proposed -> granted | denied;  granted -> started -> verified | failed.
// The lease on the target is taken at grant time and released at the end, so
// no two actors ever act on one target at once.

export type ActionState = 'proposed' | 'granted' | 'denied' | 'started' | 'verified' | 'failed';
const ACTION_MOVES: Record<ActionState, readonly ActionState[]> = {
  proposed: ['granted', 'denied'],
  granted: ['started', 'failed'],
  started: ['verified', 'failed'],
  denied: [],
  verified: [],
  failed: [],
};

/** Safety before recovery before capacity. */
export type ActionPriority = 'safety' | 'recovery' | 'capacity';

export interface Proposal {
  type: ActionType;
  target: Target;
  priority: ActionPriority;
  reason: string;
  incidentId: number | null;
  data?: Record<string, unknown>;
}

export type GrantedBy = 'local' | 'self' | 'consensus';
export type Decision =
  { granted: true; grantedBy: GrantedBy } | { granted: false; reason: string; grantedBy: GrantedBy };

/** The one question every actor asks before acting. orchestrator-consensus answers it (ConsensusGrantor); LocalGrantor answers alone. */
export interface Grantor {
  decide(actionId: number, proposal: Proposal, actor: EventSource): Decision | Promise<Decision>;
  release(target: Target, actor: EventSource): void;
}

export class LocalGrantor implements Grantor {
  constructor(
    private readonly leases: LeaseStore,
    private readonly isPaused: () => boolean,
    private readonly leaseTtlMs = 10 * 60_000,
  ) {}

  decide(actionId: number, proposal: Proposal, actor: EventSource): Decision {
    if (proposal.priority !== 'safety' && this.isPaused()) {
      return { granted: false, reason: 'swarm is paused: only safety actions run', grantedBy: 'local' };
    }
    const lease = this.leases.acquire(proposal.target, actor, actionId, this.leaseTtlMs);
    if (!lease.ok) {
      return {
        granted: false,
        reason: `target is leased by ${lease.heldBy.holder} for action ${lease.heldBy.actionId}`,
        grantedBy: 'local',
      };
    }
    return { granted: true, grantedBy: 'local' };
  }

  release(target: Target, actor: EventSource): void {
    this.leases.release(target, actor);
  }
}

export interface ActionRecord {
  id: number;
  type: ActionType;
  target: Target;
  incidentId: number | null;
  state: ActionState;
  proposedAt: number;
  startedAt: number | null;
}

export class Action {
  private readonly lifecycle: Lifecycle<ActionState>;
  readonly record: ActionRecord;
  deniedReason: string | null = null;

  private constructor(
    private readonly deps: ActionDeps,
    record: ActionRecord,
  ) {
    this.record = record;
    this.lifecycle = new Lifecycle<ActionState>('action', record.state, ACTION_MOVES, (from, to, reason) => {
      this.record.state = to;
      deps.logger.info(
        { actionId: record.id, type: record.type, target: record.target, from, to, reason },
        'action transition',
      );
    });
  }

  /** Records the proposal and asks for a grant. A denied action is already finished. */
  static async propose(deps: ActionDeps, p: Proposal): Promise<Action> {
    const proposed = deps.log.append({
      kind: 'action.proposed',
      target: p.target,
      severity: 'info',
      data: {
        type: p.type,
        priority: p.priority,
        reason: p.reason,
        incidentId: p.incidentId,
        message: `${p.type}: ${p.reason}`,
        ...p.data,
      },
    });
    // The action's id is the seq of its proposal; every later step carries it.
    const action = new Action(deps, {
      id: proposed.seq,
      type: p.type,
      target: p.target,
      incidentId: p.incidentId,
      state: 'proposed',
      proposedAt: deps.now(),
      startedAt: null,
    });
    const decision = await deps.grantor.decide(proposed.seq, p, deps.actor);
    if (decision.granted) {
      deps.log.append({
        kind: 'action.granted',
        target: p.target,
        actionId: action.id,
        data: { type: p.type, grantedBy: decision.grantedBy, message: `${p.type} granted (${decision.grantedBy})` },
      });
      action.lifecycle.to('granted', decision.grantedBy);
    } else {
      deps.log.append({
        kind: 'action.denied',
        target: p.target,
        severity: 'warn',
        actionId: action.id,
        data: {
          type: p.type,
          grantedBy: decision.grantedBy,
          reason: decision.reason,
          message: `${p.type} denied: ${decision.reason}`,
        },
      });
      action.deniedReason = decision.reason;
      action.lifecycle.to('denied', decision.reason);
    }
    return action;
  }

  /** Rebuilds an action that was started before this process restarted. */
  static resume(deps: ActionDeps, record: ActionRecord): Action {
    return new Action(deps, { ...record });
  }

  get id(): number {
    return this.record.id;
  }

  get granted(): boolean {
    return this.lifecycle.state !== 'denied';
  }

  get state(): ActionState {
    return this.lifecycle.state;
  }

  started(data: Record<string, unknown> = {}): void {
    this.deps.log.append({
      kind: 'action.started',
      target: this.record.target,
      actionId: this.id,
      data: { type: this.record.type, message: `${this.record.type} started`, ...data },
    });
    this.record.startedAt = this.deps.now();
    this.lifecycle.to('started', 'executing');
  }

  verified(evidence: Record<string, unknown>): void {
    this.finish('verified', 'info', evidence);
  }

  failed(evidence: Record<string, unknown>): void {
    this.finish('failed', 'error', evidence);
  }

  private finish(to: 'verified' | 'failed', severity: 'info' | 'error', evidence: Record<string, unknown>): void {
    const message = typeof evidence.message === 'string' ? evidence.message : `${this.record.type} ${to}`;
    this.deps.log.append({
      kind: `action.${to}`,
      target: this.record.target,
      severity,
      actionId: this.id,
      data: { type: this.record.type, incidentId: this.record.incidentId, ...evidence, message },
    });
    this.lifecycle.to(to, message);
    this.deps.grantor.release(this.record.target, this.deps.actor);
  }
}

export interface ActionDeps {
  log: EventLog;
  grantor: Grantor;
  actor: EventSource;
  now: () => number;
  logger: Logger;
}

/** Action deps for one actor, its grantor made once, on first use, from the daemon's context. */
export function actorDeps<C extends ActorContext>(
  actor: EventSource,
  makeGrantor: (ctx: C) => Grantor,
): (ctx: C) => ActionDeps {
  let grantor: Grantor | null = null;
  return (ctx) => ({
    log: ctx.log,
    grantor: (grantor ??= makeGrantor(ctx)),
    actor,
    now: () => ctx.clock.now(),
    logger: ctx.logger,
  });
}

export interface ActorContext {
  log: EventLog;
  clock: { now(): number };
  logger: Logger;
}
