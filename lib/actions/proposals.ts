import type { Db } from '../db';

// The proposals table is the mailbox between every actor and
// orchestrator-consensus. A decision flips `pending` exactly once
// (UPDATE … WHERE status = 'pending'), so consensus and an actor that gave
// up waiting and granted itself can never both win.

export type ProposalStatus = 'pending' | 'granted' | 'denied';

export interface ProposalRow {
  actionId: number;
  actor: string;
  type: string;
  target: string;
  priority: 'safety' | 'recovery' | 'capacity';
  createdAt: number;
  status: ProposalStatus;
  grantedBy: string | null;
  reason: string | null;
}

interface Raw {
  action_id: number;
  actor: string;
  type: string;
  target: string;
  priority: string;
  created_at: number;
  status: string;
  granted_by: string | null;
  reason: string | null;
}

const toRow = (r: Raw): ProposalRow => ({
  actionId: r.action_id,
  actor: r.actor,
  type: r.type,
  target: r.target,
  priority: r.priority as ProposalRow['priority'],
  createdAt: r.created_at,
  status: r.status as ProposalStatus,
  grantedBy: r.granted_by,
  reason: r.reason,
});

export function insertProposal(db: Db, p: Omit<ProposalRow, 'status' | 'grantedBy' | 'reason'>): void {
  db.prepare(
    "INSERT INTO proposals (action_id, actor, type, target, priority, created_at, status) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
  ).run(p.actionId, p.actor, p.type, p.target, p.priority, p.createdAt);
}

export function getProposal(db: Db, actionId: number): ProposalRow | null {
  const r = db.prepare<[number], Raw>('SELECT * FROM proposals WHERE action_id = ?').get(actionId);
  return r ? toRow(r) : null;
}

export function pendingProposals(db: Db): ProposalRow[] {
  return db
    .prepare<[], Raw>("SELECT * FROM proposals WHERE status = 'pending' ORDER BY created_at, action_id")
    .all()
    .map(toRow);
}

/** Returns false when someone else decided first. */
export function decideProposal(
  db: Db,
  actionId: number,
  status: 'granted' | 'denied',
  grantedBy: string,
  reason: string | null,
  now: number,
): boolean {
  return (
    db
      .prepare(
        "UPDATE proposals SET status = ?, granted_by = ?, reason = ?, decided_at = ? WHERE action_id = ? AND status = 'pending'",
      )
      .run(status, grantedBy, reason, now, actionId).changes === 1
  );
}

/** Decided proposals older than this are history; the event log keeps them. */
export function pruneProposals(db: Db, olderThan: number): void {
  db.prepare("DELETE FROM proposals WHERE status != 'pending' AND decided_at < ?").run(olderThan);
}
