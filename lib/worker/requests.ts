import type { Db } from '../db';
import type { EventSource } from '../event-kinds';

// Requests to the sentry from other actors: swarmctl (restart, stop) and
// util-controller (requeue a worker, fill a lane), session-state-manager
// (launch past the utilization gate when the run sits still). The requester records and
// is granted the action itself; the sentry, which owns worker processes,
// carries it out on its next tick and records started/verified under the
// same action id, releasing the requester's lease.

export type WorkerOp = 'restart' | 'stop' | 'requeue';

export interface ManualCommand {
  workerId: string;
  op: WorkerOp;
  actionId: number;
  holder: EventSource;
  done(): void;
}

export interface LaneFill {
  lane: string;
  count: number;
  actionId: number;
  /** Who was granted the launch_worker action and holds the lane's lease: util-controller, or session-state-manager launching past the utilization gate. */
  holder: EventSource;
  done(): void;
}

const WORKER_PREFIX = 'command:worker:';
const LANE_PREFIX = 'fill:lane:';

const upsert = (db: Db, key: string, value: unknown): void => {
  db.prepare(
    'INSERT INTO control (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  ).run(key, JSON.stringify(value));
};

function take<T>(
  db: Db,
  prefix: string,
  map: (key: string, value: Record<string, unknown>, done: () => void) => T,
): T[] {
  const rows = db
    .prepare<[string], { key: string; value: string }>('SELECT key, value FROM control WHERE key LIKE ? ORDER BY key')
    .all(`${prefix}%`);
  return rows.map((r) =>
    map(
      r.key.slice(prefix.length),
      JSON.parse(r.value) as Record<string, unknown>,
      () => void db.prepare('DELETE FROM control WHERE key = ? AND value = ?').run(r.key, r.value),
    ),
  );
}

export function requestCommand(
  db: Db,
  workerId: string,
  op: WorkerOp,
  actionId: number,
  holder: EventSource = 'swarmctl',
): void {
  upsert(db, `${WORKER_PREFIX}${workerId}`, { op, actionId, holder });
}

export function pendingCommands(db: Db): ManualCommand[] {
  return take(db, WORKER_PREFIX, (workerId, v, done) => ({
    workerId,
    op: v.op as WorkerOp,
    actionId: Number(v.actionId),
    holder: (v.holder as EventSource | undefined) ?? 'swarmctl',
    done,
  }));
}

/** One pending fill per lane and requester: a forced launch never overwrites util-controller's permit. */
export function requestLaneFill(
  db: Db,
  lane: string,
  count: number,
  actionId: number,
  holder: EventSource = 'util-controller',
): void {
  upsert(db, holder === 'util-controller' ? `${LANE_PREFIX}${lane}` : `${LANE_PREFIX}${lane}@${holder}`, {
    count,
    actionId,
    holder,
  });
}

export function pendingLaneFills(db: Db): LaneFill[] {
  return take(db, LANE_PREFIX, (key, v, done) => ({
    lane: key.split('@')[0] as string,
    count: Number(v.count),
    actionId: Number(v.actionId),
    holder: (v.holder as EventSource | undefined) ?? 'util-controller',
    done,
  }));
}
