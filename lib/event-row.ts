import { hash } from 'node:crypto';
import type { Severity, StoredEvent } from './event-kinds';

// One row of the events table, and the hash that chains it to the row before.

export const GENESIS_HASH = '0'.repeat(64);

export interface Row {
  seq: number;
  ts: string;
  run_id: string;
  source: string;
  kind: string;
  target: string;
  severity: string;
  action_id: number | null;
  data: string;
  hash: string;
}

/** One-shot crypto.hash, not createHash(): it runs under the event log's write lock, and the daemons run V8 without its optimizing compiler, where createHash's layers cost twice as much. */
export function hashRow(prevHash: string, r: Omit<Row, 'hash'>): string {
  return hash(
    'sha256',
    `${prevHash}\n${r.seq}\n${r.ts}\n${r.run_id}\n${r.source}\n${r.kind}\n${r.target}\n${r.severity}\n${r.action_id ?? ''}\n${r.data}`,
    'hex',
  );
}

export function rowToEvent(r: Row): StoredEvent {
  return rowWithData(r, parseData(r.data));
}

export function parseData(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { unparsable: text };
  }
}

/** The event a row holds, its data already parsed. */
export function rowWithData(r: Row, data: Record<string, unknown>): StoredEvent {
  return {
    seq: r.seq,
    ts: r.ts,
    runId: r.run_id,
    source: r.source,
    kind: r.kind,
    target: r.target,
    severity: r.severity as Severity,
    actionId: r.action_id,
    data,
    hash: r.hash,
  };
}
