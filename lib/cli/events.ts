import fs from 'node:fs';
import path from 'node:path';
import { DB_FILE, openDb } from '../db';
import { UsageError } from '../errors';
import { readEvents, type EventFilter } from '../event-log';
import type { StoredEvent } from '../event-kinds';
import { formatEventLine } from '../projection';
import { cliConfig, type GlobalOptions } from './cli-context';

export interface EventsOptions extends GlobalOptions {
  follow?: boolean;
  since?: string;
  kind?: string;
  target?: string;
  limit?: string;
}

const intOption = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} expects a non-negative integer, got "${v}"`);
  return Number(v);
};

function print(e: StoredEvent, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(e)}\n` : formatEventLine(e));
}

export async function eventsCommand(opts: EventsOptions): Promise<number> {
  const config = cliConfig(opts);
  const filter: EventFilter = { sinceSeq: intOption('since', opts.since) ?? 0, limit: intOption('limit', opts.limit) };
  if (opts.kind) filter.kindPrefix = opts.kind;
  if (opts.target) filter.target = opts.target;
  const dbFile = path.join(config.stateDir, DB_FILE);
  if (!fs.existsSync(dbFile) && !opts.follow) return 0;
  let db = fs.existsSync(dbFile) ? openDb(config.stateDir, { readonly: true }) : null;
  let last = filter.sinceSeq ?? 0;
  const drain = () => {
    if (!db) return;
    for (const e of readEvents(db, { ...filter, sinceSeq: last, limit: opts.follow ? 1000 : filter.limit })) {
      print(e, Boolean(opts.json));
      last = e.seq;
    }
  };
  if (!opts.follow) {
    drain();
    db?.close();
    return 0;
  }
  return new Promise<number>((resolve) => {
    // Listening before the first line is printed: whoever reads it may stop us at once, and a SIGINT with no
    // listener yet would kill the process instead of ending it with 0.
    // `timer` is set below, in this same synchronous block, before any signal can be handled.
    const stop = () => {
      clearInterval(timer);
      db?.close();
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    drain();
    const timer = setInterval(() => {
      if (!db && fs.existsSync(dbFile)) db = openDb(config.stateDir, { readonly: true });
      drain();
    }, 250);
  });
}
