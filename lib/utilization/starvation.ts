import { formatDuration } from '../duration';
import type { DaemonContext } from '../daemon-runtime';

// A utilization lane on a machine busy with other work can hold its queue
// back for ever; holding is right, saying nothing is not. A lane held back by
// use (or memory) for `starveAfter`, with work queued and slots free, is
// lane_starved: recorded once per episode, and shown by status and query
// with what to change, until the lane fills or its queue empties.

export interface HeldBack {
  usePct: number | null;
  memPct: number;
  targetPct: number;
  queued: number;
  freeSlots: number;
}

export interface StarvedLane extends HeldBack {
  since: string;
  seq: number;
}

export class StarvationWatch {
  private readonly heldSince = new Map<string, number>();
  private readonly starved = new Map<string, StarvedLane>();

  /** Called each tick per lane with what holds it back now, or null when nothing does. */
  observe(ctx: DaemonContext, lane: string, held: HeldBack | null, now: number): void {
    if (!held) {
      this.heldSince.delete(lane);
      this.starved.delete(lane);
      return;
    }
    const since = this.heldSince.get(lane) ?? now;
    this.heldSince.set(lane, since);
    const forMs = now - since;
    const known = this.starved.get(lane);
    if (known) {
      Object.assign(known, held);
      return;
    }
    if (forMs < ctx.config.utilization.starveAfterMs) return;
    const by =
      held.memPct > ctx.config.utilization.memoryCeiling
        ? `memory ${held.memPct}% over the ceiling ${ctx.config.utilization.memoryCeiling}%`
        : `use ${Math.round(held.usePct ?? 0)}% against target ${held.targetPct}%`;
    const e = ctx.log.append({
      kind: 'detect.lane_starved',
      target: `lane:${lane}`,
      severity: 'warn',
      data: {
        class: 'lane_starved',
        ...held,
        heldForMs: forMs,
        message: `held back for ${formatDuration(forMs)} by ${by}, with ${held.queued} task(s) queued and ${held.freeSlots} slot(s) free`,
      },
    });
    this.starved.set(lane, { ...held, since: new Date(since).toISOString(), seq: e.seq });
  }

  view(): Record<string, StarvedLane> {
    return Object.fromEntries(this.starved);
  }
}
