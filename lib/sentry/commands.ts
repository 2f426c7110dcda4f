import type { Db } from '../db';

// Requests from swarmctl to the sentry. swarmctl records and grants the
// action itself (source swarmctl); the sentry carries it out on its next tick
// and records started/verified under the same action id.

export interface ManualCommand {
  workerId: string;
  op: 'restart' | 'stop';
  actionId: number;
  done(): void;
}

const PREFIX = 'command:worker:';

export function requestCommand(db: Db, workerId: string, op: 'restart' | 'stop', actionId: number): void {
  db.prepare('INSERT INTO control (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(
    `${PREFIX}${workerId}`,
    JSON.stringify({ op, actionId }),
  );
}

export function pendingCommands(db: Db): ManualCommand[] {
  const rows = db.prepare<[string], { key: string; value: string }>('SELECT key, value FROM control WHERE key LIKE ? ORDER BY key').all(`${PREFIX}%`);
  return rows.map((r) => {
    const v = JSON.parse(r.value) as { op: 'restart' | 'stop'; actionId: number };
    return { workerId: r.key.slice(PREFIX.length), op: v.op, actionId: v.actionId, done: () => void db.prepare('DELETE FROM control WHERE key = ? AND value = ?').run(r.key, r.value) };
  });
}

/** escalation.resolved events after `afterSeq`, each naming the escalation it closes. */
export function resolvedEscalations(db: Db, afterSeq: number): { seq: number; escalationId: number }[] {
  return db
    .prepare<[number], { seq: number; data: string }>("SELECT seq, data FROM events WHERE kind = 'escalation.resolved' AND seq > ? ORDER BY seq")
    .all(afterSeq)
    .map((r) => ({ seq: r.seq, escalationId: Number((JSON.parse(r.data) as { escalationId?: number }).escalationId) }));
}
