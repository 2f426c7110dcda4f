import type { Db } from './db';
import type { EventLog } from './event-log';
import type { StoredEvent, Target } from './event-kinds';

// Escalations: the one way a person is called, and the one way to learn
// which calls were answered. Raised by any daemon (escalation.raised), each
// resolved by `swarmctl ack` or, for a condition that clears by itself, by
// its raiser (escalation.resolved naming the escalation's seq).

export interface Escalate {
  target: Target;
  /** What a person must know, in words; also `query.escalations[].reason`. */
  reason: string;
  /** The seq of the detection behind it, if any. */
  incidentId: number | null;
  /** Evidence beside the reason (workerId, class, breaker…). */
  data?: Record<string, unknown>;
  /** The event's message; by default "needs a person: REASON". */
  message?: string;
}

export function raiseEscalation(log: EventLog, e: Escalate): StoredEvent {
  return log.append({
    kind: 'escalation.raised',
    target: e.target,
    severity: 'critical',
    data: {
      reason: e.reason,
      incidentId: e.incidentId,
      ...e.data,
      message: e.message ?? `needs a person: ${e.reason}`,
    },
  });
}

/** Closes escalation `escalationId` (the seq of its escalation.raised), saying by whom. */
export function resolveEscalation(
  log: EventLog,
  r: { target: Target; escalationId: number; by: string; message: string; data?: Record<string, unknown> },
): StoredEvent {
  return log.append({
    kind: 'escalation.resolved',
    target: r.target,
    data: { escalationId: r.escalationId, by: r.by, ...r.data, message: r.message },
  });
}

/** escalation.resolved events after `afterSeq`, oldest first, each with the escalation it closes. */
export function resolvedEscalations(db: Db, afterSeq = 0): { seq: number; escalationId: number; by: string | null }[] {
  return db
    .prepare<[number], { seq: number; data: string }>(
      "SELECT seq, data FROM events WHERE kind = 'escalation.resolved' AND seq > ? ORDER BY seq",
    )
    .all(afterSeq)
    .map((r) => {
      const d = JSON.parse(r.data) as { escalationId?: unknown; by?: unknown };
      return { seq: r.seq, escalationId: Number(d.escalationId), by: typeof d.by === 'string' ? d.by : null };
    });
}

/** The ids (seqs) of every escalation resolved so far. */
export function resolvedEscalationIds(db: Db): Set<number> {
  return new Set(resolvedEscalations(db).map((r) => r.escalationId));
}
