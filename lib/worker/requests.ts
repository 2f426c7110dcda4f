import type { Db } from '../db';
import { z } from 'zod';
import { errorMessage } from '../errors';
import { EVENT_SOURCES, type EventSource } from '../event-kinds';

// Requests to the sentry from other actors: swarmctl (restart, stop) and
// util-controller (requeue a worker, fill a lane), session-state-manager
// (launch past the utilization gate when the run sits still). The requester records and
// is granted the action itself; the sentry, which owns worker processes,
// carries it out on its next tick and records started/verified under the
// same action id, releasing the requester's lease.

export const WORKER_OPS = ['restart', 'stop', 'requeue'] as const;
export type WorkerOp = (typeof WORKER_OPS)[number];

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

/** The sentry's way to say a request was dropped. */
export const badRequest =
  (ctx: { logger: { warn(o: object, msg: string): void } }): BadRequest =>
  (key, problem) =>
    ctx.logger.warn({ key, problem }, 'unreadable request dropped');

/** A request row that does not parse (swarm.db edited by hand, or written by another version): dropped, and said. */
export type BadRequest = (key: string, problem: string) => void;

const CommandSchema = z.object({
  op: z.enum(WORKER_OPS),
  actionId: z.number().int(),
  holder: z.enum(EVENT_SOURCES).default('swarmctl'),
});
const FillSchema = z.object({
  count: z.number().int().positive(),
  actionId: z.number().int(),
  holder: z.enum(EVENT_SOURCES).default('util-controller'),
});

function parseRow<S extends z.ZodType>(
  text: string,
  schema: S,
): { ok: true; value: z.output<S> } | { ok: false; problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: errorMessage(err) };
  }
  const r = schema.safeParse(json);
  return r.success ? { ok: true, value: r.data } : { ok: false, problem: r.error.message };
}

function take<S extends z.ZodType, T>(
  db: Db,
  prefix: string,
  schema: S,
  bad: BadRequest,
  map: (key: string, value: z.output<S>, done: () => void) => T,
): T[] {
  const rows = db
    .prepare<[string], { key: string; value: string }>('SELECT key, value FROM control WHERE key LIKE ? ORDER BY key')
    .all(`${prefix}%`);
  const out: T[] = [];
  for (const r of rows) {
    const done = () => void db.prepare('DELETE FROM control WHERE key = ? AND value = ?').run(r.key, r.value);
    const parsed = parseRow(r.value, schema);
    if (!parsed.ok) {
      done();
      bad(r.key, parsed.problem);
      continue;
    }
    out.push(map(r.key.slice(prefix.length), parsed.value, done));
  }
  return out;
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

export function pendingCommands(db: Db, bad: BadRequest): ManualCommand[] {
  return take(db, WORKER_PREFIX, CommandSchema, bad, (workerId, v, done) => ({ workerId, ...v, done }));
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

export function pendingLaneFills(db: Db, bad: BadRequest): LaneFill[] {
  return take(db, LANE_PREFIX, FillSchema, bad, (key, v, done) => ({ lane: key.split('@')[0] as string, ...v, done }));
}
