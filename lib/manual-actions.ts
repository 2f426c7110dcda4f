import { Action } from './actions/action';
import { makeGrantor } from './actions/make-grantor';
import type { Clock } from './clock';
import type { CompiledConfig } from './config/config';
import type { Db } from './db';
import { resolveEscalation } from './escalations';
import type { EventSource, Target } from './event-kinds';
import type { EventLog } from './event-log';
import { silentLogger } from './logger';
import type { RunRecord } from './run-registry';
import { setControl } from './run-registry';
import { readEscalations } from './snapshot';
import { requestCommand } from './worker/requests';

// A person's word, whichever way it comes: swarmctl (source `swarmctl`) or
// the dashboard (source `dashboard`). One path, so both are granted, leased,
// recorded and carried out the same way.

export interface PersonWriter {
  config: CompiledConfig;
  db: Db;
  log: EventLog;
  run: RunRecord;
}

export type PersonSource = Extract<EventSource, 'swarmctl' | 'dashboard'>;

/** A manual restart or stop, as a safety action (pause does not hold it back); worker-sentry carries it out. */
export async function requestWorkerOp(
  w: PersonWriter,
  clock: Clock,
  source: PersonSource,
  op: 'restart' | 'stop',
  workerId: string,
): Promise<{ actionId: number; granted: boolean }> {
  const action = await Action.propose(
    {
      log: w.log,
      grantor: makeGrantor(w.db, clock, w.config),
      actor: source,
      now: () => clock.now(),
      logger: silentLogger,
    },
    {
      type: op === 'stop' ? 'stop_worker' : 'restart_worker',
      target: `worker:${workerId}`,
      priority: 'safety',
      reason: `${op} requested by a person (${source})`,
      incidentId: null,
    },
  );
  if (action.granted) requestCommand(w.db, workerId, op, action.id, source);
  return { actionId: action.id, granted: action.granted };
}

export function setPaused(w: PersonWriter, paused: boolean, source: PersonSource): void {
  setControl(w.db, 'paused', String(paused));
  w.log.append({
    kind: paused ? 'run.paused' : 'run.unpaused',
    target: `run:${w.run.id}`,
    data: {
      by: source,
      message: paused ? 'maintenance mode: only safety actions run' : 'maintenance mode over',
    },
  });
}

export type AckOutcome = { kind: 'resolved'; target: string } | { kind: 'already' } | { kind: 'unknown' };

export function ackEscalation(w: PersonWriter, id: number, by: string): AckOutcome {
  const esc = readEscalations(w.db).find((e) => e.id === id);
  if (!esc) return { kind: 'unknown' };
  if (esc.status === 'resolved') return { kind: 'already' };
  resolveEscalation(w.log, {
    target: esc.target as Target,
    escalationId: id,
    by,
    message: `escalation ${id} acknowledged; ${esc.target} may run again`,
  });
  return { kind: 'resolved', target: esc.target };
}
