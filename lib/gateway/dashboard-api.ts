import { z } from 'zod';
import { openWriterFor } from '../cli/cli-context';
import type { Clock } from '../clock';
import type { CompiledConfig } from '../config/config';
import { NAME_PATTERN } from '../config/primitives';
import type { Db } from '../db';
import { errorMessage } from '../errors';
import type { StoredEvent } from '../event-kinds';
import { readEvents } from '../event-log';
import { rowToEvent, type Row } from '../event-row';
import { ackEscalation, requestWorkerOp, setPaused } from '../manual-actions';
import { buildSnapshot, type Snapshot } from '../snapshot';

// What the dashboard reads and does, apart from HTTP: the snapshot (the
// same JSON as `swarmctl query --json`), utilization series for its charts,
// one incident's events from detect to verify, the event tail, and the four
// write actions, which go through the same path as swarmctl's and are
// recorded with source `dashboard`.

export interface DashboardDeps {
  config: () => CompiledConfig;
  db: Db;
  clock: Clock;
}

export function snapshot(d: DashboardDeps): Snapshot {
  return buildSnapshot(d.config());
}

/** Series of the samples table since `sinceMs` (swarm clock): cpu, mem, lane:NAME:busy, gpu:N:util, gpu:N:mem. */
export function samples(d: DashboardDeps, sinceMs: number): Record<string, { t: number[]; v: (number | null)[] }> {
  const rows = d.db
    .prepare<[number], { ts: number; series: string; value: number | null }>(
      'SELECT ts, series, value FROM samples WHERE ts >= ? ORDER BY ts LIMIT 200000',
    )
    .all(sinceMs);
  const out: Record<string, { t: number[]; v: (number | null)[] }> = {};
  for (const r of rows) {
    const s = (out[r.series] ??= { t: [], v: [] });
    s.t.push(Math.round(r.ts / 1000));
    s.v.push(r.value);
  }
  return out;
}

/** An incident's events: its detection, the actions taken for it, and any escalation of it. */
export function incidentEvents(d: DashboardDeps, id: number): StoredEvent[] {
  return d.db
    .prepare<[number, number, number], Row>(
      `SELECT * FROM events WHERE seq = ?
         OR action_id IN (SELECT seq FROM events WHERE kind = 'action.proposed' AND json_extract(data, '$.incidentId') = ?)
         OR (kind LIKE 'escalation.%' AND json_extract(data, '$.incidentId') = ?)
       ORDER BY seq LIMIT 500`,
    )
    .all(id, id, id)
    .map(rowToEvent);
}

export function tail(d: DashboardDeps, sinceSeq: number, limit: number): StoredEvent[] {
  if (sinceSeq > 0) return readEvents(d.db, { sinceSeq, limit });
  const last = d.db.prepare<[], { m: number | null }>('SELECT max(seq) AS m FROM events').get()?.m ?? 0;
  return readEvents(d.db, { sinceSeq: Math.max(0, last - limit), limit });
}

export const WriteSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('ack'), id: z.number().int().positive() }),
  z.object({ op: z.literal('pause') }),
  z.object({ op: z.literal('resume') }),
  // A worker id as swarmctl restart takes it.
  z.object({ op: z.literal('restart'), worker: z.string().regex(new RegExp(NAME_PATTERN)) }),
]);
export type WriteRequest = z.output<typeof WriteSchema>;

export async function write(d: DashboardDeps, req: WriteRequest): Promise<{ status: number; body: unknown }> {
  const w = openWriterFor(d.config(), { source: 'dashboard' });
  try {
    switch (req.op) {
      case 'ack': {
        const r = ackEscalation(w, req.id, 'dashboard');
        if (r.kind === 'unknown') return { status: 404, body: { error: `no escalation ${req.id}` } };
        return { status: 200, body: { id: req.id, status: 'resolved', already: r.kind === 'already' } };
      }
      case 'pause':
      case 'resume':
        setPaused(w, req.op === 'pause', 'dashboard');
        return { status: 200, body: { paused: req.op === 'pause' } };
      case 'restart': {
        const r = await requestWorkerOp(w, d.clock, 'dashboard', 'restart', req.worker);
        return { status: r.granted ? 200 : 409, body: r };
      }
    }
  } catch (err) {
    return { status: 500, body: { error: errorMessage(err) } };
  } finally {
    w.close();
  }
}
