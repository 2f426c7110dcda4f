import type { Db } from '../db';
import type { Snapshot } from '../snapshot';
import type { Scores } from '../state-files';

// Three numbers for "how is the swarm doing", each from what is already
// recorded, never guessed:
//   deviation   — distance from the utilization targets (0 = on target);
//   performance — tasks done per hour, and the share of live workers whose
//                 progress is advancing;
//   efficiency  — busy lane slots per restart in the last hour.

export type { Scores };

const count = (db: Db, kind: string, sinceIso: string): number =>
  db
    .prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM events WHERE kind = ? AND ts >= ?')
    .get(kind, sinceIso)?.n ?? 0;

/** `machine`: CPU and memory use as util-controller reads them (lib/machine-load.ts), so both say the same. */
export function computeScores(
  db: Db,
  snap: Snapshot,
  targets: { cpuTarget: number; memoryCeiling: number },
  machine: { cpuPct: number | null; memPct: number },
  now: number,
): Scores {
  const hourAgo = new Date(now - 3_600_000).toISOString();
  const { cpuPct, memPct } = machine;
  const cpuDev = cpuPct === null ? 0 : Math.abs(cpuPct - targets.cpuTarget) / 100;
  const memDev = Math.max(0, memPct - targets.memoryCeiling) / 100;
  const live = snap.workers.filter((w) => w.status === 'running' || w.status === 'stale');
  const advancing = live.filter((w) => w.progressAgeMs !== null && w.progressAgeMs < 60_000).length;
  const restarts = count(db, 'worker.launched', hourAgo) - count(db, 'task.started', hourAgo);
  const busy = snap.lanes.reduce((a, l) => a + l.busy, 0);
  const slots = snap.lanes.reduce((a, l) => a + l.slots, 0);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    at: new Date(now).toISOString(),
    deviation: round(cpuDev + memDev),
    performance: {
      tasksPerHour: count(db, 'task.completed', hourAgo),
      advancingPct: live.length ? Math.round((advancing / live.length) * 100) : null,
    },
    efficiency: round(slots ? busy / slots / (1 + Math.max(0, restarts)) : 0),
    inputs: { cpuPct, memPct, busySlots: busy, slots, restartsLastHour: Math.max(0, restarts) },
  };
}
