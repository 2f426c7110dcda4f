import type { Clock } from '../clock';
import type { CompiledNotify } from '../config/gateway-schema';
import { kindMatches } from '../config/gateway-schema';
import type { Db } from '../db';
import { errorMessage } from '../errors';
import type { StoredEvent } from '../event-kinds';
import { readEvents, type EventLog } from '../event-log';
import { Lifecycle } from '../lifecycle';
import type { Logger } from '../logger';
import { NotifyCursors, type NotifyCursor } from './cursors';
import { delivery, retryDelayMs } from './message';
import { post, type PostResult } from './post';

// Tells people: each event an endpoint asked for is POSTed to it once, in seq
// order, from a cursor in swarm.db (lib/notify/cursors.ts), so a sender
// killed mid-delivery sends after its restart and skips nothing. A failed
// attempt is retried after a growing, jittered wait; after the endpoint's
// last attempt the event is given up, notify.failed recorded, and the
// endpoint goes on with the next. Each endpoint has one pump, started from
// the tick and never awaited by it: a dead or slow endpoint delays nobody's
// tick, not even this daemon's.
//
// Delivery is at least once: a sender killed after the receiver accepted but
// before the cursor moved sends that event again. X-Swarm-Event-Seq is the
// receiver's key to drop such a repeat.

/**
 * One endpoint's pump:
 *   idle      caught up, or its next attempt is not due; the tick looks again
 *   sending   POSTing, and going on to the next event while each one succeeds
 *   stopped   the daemon is stopping: a POST in flight is aborted
 */
type PumpState = 'idle' | 'sending' | 'stopped';
const PUMP_MOVES: Record<PumpState, readonly PumpState[]> = {
  idle: ['sending', 'stopped'],
  sending: ['idle', 'stopped'],
  stopped: [],
};

/** Events read per look at the log: enough to pass a long run of kinds the endpoint did not ask for. */
const SCAN_LIMIT = 500;

export interface NotifierDeps {
  db: Db;
  log: EventLog;
  clock: Clock;
  logger: Logger;
  /** The swarm's name, in every body. */
  swarm: string;
  /** Where a new endpoint's cursor starts: every event after this seq is for it. */
  startSeq: () => number;
  /** A secret's value by its variable's name. */
  secret: (envName: string) => string | undefined;
  random?: () => number;
}

interface Pump {
  life: Lifecycle<PumpState>;
  abort: AbortController;
}

export class Notifier {
  private readonly cursors: NotifyCursors;
  private readonly pumps = new Map<string, Pump>();
  private readonly random: () => number;

  constructor(private readonly deps: NotifierDeps) {
    this.cursors = new NotifyCursors(deps.db);
    this.random = deps.random ?? Math.random;
  }

  /** Starts a pump for each endpoint that has none running and is due; returns at once. */
  kick(endpoints: readonly CompiledNotify[]): void {
    for (const ep of endpoints) {
      const pump = this.pumpOf(ep.name);
      if (pump.life.state !== 'idle') continue;
      const cursor = this.cursors.get(ep.name) ?? this.cursors.open(ep.name, this.deps.startSeq());
      if (cursor.nextAt !== null && cursor.nextAt > this.deps.clock.now()) continue;
      pump.life.to('sending', 'due');
      void this.pump(ep, pump).catch((err: unknown) => {
        this.deps.logger.error({ endpoint: ep.name, err: errorMessage(err) }, 'notify pump failed');
        if (pump.life.state === 'sending') pump.life.to('idle', 'pump failed');
      });
    }
  }

  /** Aborts every POST in flight; a stopped notifier starts nothing. */
  stop(): void {
    for (const p of this.pumps.values()) {
      if (p.life.state !== 'stopped') p.life.to('stopped', 'daemon stopping');
      p.abort.abort();
    }
  }

  /** Each endpoint's place and health, for the state file and `status`. */
  view(endpoints: readonly CompiledNotify[]): NotifyEndpointView[] {
    return endpoints.map((ep) => {
      const c = this.cursors.get(ep.name);
      return {
        name: ep.name,
        state: this.pumps.get(ep.name)?.life.state ?? 'idle',
        seq: c?.seq ?? null,
        failures: c?.failures ?? 0,
        nextAt: c?.nextAt ?? null,
        lastError: c?.lastError ?? null,
        delivered: c?.delivered ?? 0,
        givenUp: c?.givenUp ?? 0,
      };
    });
  }

  private pumpOf(name: string): Pump {
    let p = this.pumps.get(name);
    if (!p) {
      const life = new Lifecycle<PumpState>(`notify ${name}`, 'idle', PUMP_MOVES, (from, to, reason) =>
        this.deps.logger.debug({ endpoint: name, from, to, reason }, 'notify pump transition'),
      );
      p = { life, abort: new AbortController() };
      this.pumps.set(name, p);
    }
    return p;
  }

  private async pump(ep: CompiledNotify, p: Pump): Promise<void> {
    for (;;) {
      if (p.life.state !== 'sending') return;
      const cursor = this.cursors.get(ep.name);
      if (!cursor) return p.life.to('idle', 'no cursor');
      const event = this.nextFor(ep, cursor);
      if (!event) return p.life.to('idle', 'caught up');
      const secretName = ep.secretEnv;
      const secret = secretName === null ? null : (this.deps.secret(secretName) ?? null);
      if (secretName !== null && secret === null) {
        // Unsigned would be refused by a receiver that checks, or worse, accepted by one that does not.
        this.attemptFailed(ep, cursor, event, `the secret ${secretName} is not set`);
        return p.life.state === 'sending' ? p.life.to('idle', 'no secret') : undefined;
      }
      const res = await post(ep.url, delivery(ep, event, this.deps.swarm, secret), ep.timeoutMs, p.abort.signal);
      if (p.life.state !== 'sending') return; // stopped meanwhile: the cursor stays, the event is sent again
      if (res.ok) {
        this.cursors.delivered(ep.name, event.seq);
        continue;
      }
      this.attemptFailed(ep, cursor, event, describe(res));
      return p.life.to('idle', 'attempt failed');
    }
  }

  /** The first event after the cursor that the endpoint asked for; the cursor passes those it did not. */
  private nextFor(ep: CompiledNotify, cursor: NotifyCursor): StoredEvent | null {
    let since = cursor.seq;
    for (;;) {
      const batch = readEvents(this.deps.db, { sinceSeq: since, limit: SCAN_LIMIT });
      for (const e of batch) {
        if (ep.on.some((entry) => kindMatches(entry, e.kind))) {
          if (e.seq - 1 > cursor.seq) this.cursors.skip(ep.name, e.seq - 1);
          return e;
        }
      }
      const last = batch[batch.length - 1];
      if (!last) return null;
      this.cursors.skip(ep.name, last.seq);
      since = last.seq;
      if (batch.length < SCAN_LIMIT) return null;
    }
  }

  private attemptFailed(ep: CompiledNotify, cursor: NotifyCursor, e: StoredEvent, error: string): void {
    const failures = cursor.failures + 1;
    if (failures < ep.retry.attempts) {
      const waitMs = retryDelayMs(failures, ep.retry, this.random);
      this.cursors.failedAttempt(ep.name, error, this.deps.clock.now() + waitMs);
      this.deps.logger.warn(
        { endpoint: ep.name, seq: e.seq, attempt: failures, of: ep.retry.attempts, waitMs, error },
        'notify attempt failed',
      );
      return;
    }
    this.cursors.gaveUp(ep.name, e.seq, error);
    this.deps.log.append({
      kind: 'notify.failed',
      target: `notify:${ep.name}`,
      severity: 'error',
      data: {
        endpoint: ep.name,
        eventSeq: e.seq,
        eventKind: e.kind,
        attempts: failures,
        lastError: error,
        message: `${ep.name} was not told of event ${e.seq} (${e.kind}) after ${failures} attempts: ${error}`,
      },
    });
  }
}

export interface NotifyEndpointView {
  name: string;
  state: PumpState;
  /** Every event up to here is done with; null before the endpoint's first look. */
  seq: number | null;
  /** Failed attempts at the next event. */
  failures: number;
  nextAt: number | null;
  lastError: string | null;
  delivered: number;
  givenUp: number;
}

function describe(r: PostResult): string {
  return r.status === null ? (r.error ?? 'no answer') : `HTTP ${r.status}${r.body ? `: ${r.body.slice(0, 200)}` : ''}`;
}
