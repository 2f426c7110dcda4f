// When a lane may grow, refill and back off, as pure functions of a sample
// window, so a recorded utilization trace can prove the policy never flaps.
//
// The split is Kubernetes' HPA over a ReplicaSet. util-controller is the HPA:
// it decides how far a lane may *grow*. worker-sentry is the ReplicaSet: a
// slot freed by a task that ended is refilled in the sentry's same tick
// while the lane's `refill` gate is open, with no window and no action.
//
// Grow (scale up), as the HPA does by default (no stabilization window on
// the way up, `behavior.scaleUp` rate-limited): the lane's resource, read as
// its mean over `windowMs` (a sliding window, as metrics-server averages)
// and now, is below target by more than the 10% tolerance; work is queued; a
// slot is free; memory is under its ceiling. How many at once is what the
// rate limit allows: in any `scaleUpPeriodMs` the lane grows by at most
// max(scaleUpPods, the count it ran at the period's start), the HPA's
// default policies (4 pods or 100 % per 15 s, whichever is more). Growth
// that overshoots shows in use, which closes the gate for growth and refill.
//
// Back off (scale down): memory over the ceiling for the whole
// stabilization window (the HPA uses 300 s). After a scale-down, neither
// direction acts again until that window has passed, so it never flaps.

export const TOLERANCE = 0.1;

export interface Sample {
  at: number;
  /** The lane's resource: machine CPU for cpu lanes, its GPUs' mean for gpu lanes; null when unknown. */
  utilPct: number | null;
  memPct: number;
  /** Workers holding the lane's slots at that moment. */
  busy: number;
}

export interface LanePolicy {
  /** 'slots': fill whenever a slot is free, without looking at utilization. */
  mode: 'utilization' | 'slots';
  targetPct: number;
  /** The reading is the mean over this window (or since the controller started, if shorter). */
  windowMs: number;
  memoryCeilingPct: number;
  stabilizationMs: number;
  scaleUpPeriodMs: number;
  /** Growth per period allowed however few run (the HPA's Pods policy). */
  scaleUpPods: number;
}

export interface LaneMemory {
  lastDownAt: number | null;
  /** Growth granted to the lane, kept for one scale-up period. */
  grown: { at: number; count: number }[];
}

export interface LaneNow {
  slots: number;
  busy: number;
  queued: number;
  fillWorkers: number;
}

/**
 * `refill`: whether the sentry may refill slots freed by ended tasks now.
 * `heldByUse`: set when use (or memory) is what keeps queued work off free
 * slots, the condition that becomes lane_starved when it lasts.
 */
export type LaneDecision = (
  | { kind: 'fill'; count: number; reason: string }
  | { kind: 'scale-down'; reason: string }
  | { kind: 'hold'; reason: string }
) & { refill: boolean; heldByUse: { usePct: number | null; memPct: number; targetPct: number } | null };

const covers = (samples: Sample[], from: number): boolean => samples.length > 0 && (samples[0] as Sample).at <= from;

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** How many more the lane may start as growth now, under the scale-up rate limit. */
export function growthRoom(p: LanePolicy, mem: LaneMemory, samples: Sample[], busyNow: number, now: number): number {
  const from = now - p.scaleUpPeriodMs;
  const atStart = samples.find((s) => s.at >= from)?.busy ?? busyNow;
  const grown = mem.grown.filter((g) => g.at > from).reduce((a, g) => a + g.count, 0);
  return Math.max(0, Math.max(p.scaleUpPods, atStart) - grown);
}

export function decideLane(
  p: LanePolicy,
  mem: LaneMemory,
  samples: Sample[],
  lane: LaneNow,
  now: number,
): LaneDecision {
  const latest = samples[samples.length - 1];
  const none = { refill: false, heldByUse: null };
  if (!latest) return { kind: 'hold', reason: 'no samples yet', ...none };
  const sinceDown = mem.lastDownAt === null ? Infinity : now - mem.lastDownAt;
  const free = lane.slots - lane.busy;
  const starving = lane.queued > 0 && free > 0;
  if (latest.memPct > p.memoryCeilingPct) {
    const held = starving
      ? { heldByUse: { usePct: latest.utilPct, memPct: latest.memPct, targetPct: p.targetPct } }
      : { heldByUse: null };
    const hold = (reason: string): LaneDecision => ({ kind: 'hold', reason, refill: false, ...held });
    if (lane.fillWorkers === 0)
      return hold(`memory ${latest.memPct}% over the ceiling ${p.memoryCeilingPct}%, but no fill worker to stop`);
    const stable = samples.filter((s) => s.at >= now - p.stabilizationMs);
    if (!covers(samples, now - p.stabilizationMs) || stable.some((s) => s.memPct <= p.memoryCeilingPct)) {
      return hold(
        `memory ${latest.memPct}% over the ceiling ${p.memoryCeilingPct}%: waiting out the stabilization window`,
      );
    }
    if (sinceDown < p.stabilizationMs) return hold('scaled down within the stabilization window');
    return {
      kind: 'scale-down',
      reason: `memory over ${p.memoryCeilingPct}% for ${Math.round(p.stabilizationMs / 1000)}s (now ${latest.memPct}%)`,
      ...none,
    };
  }
  if (sinceDown < p.stabilizationMs)
    return { kind: 'hold', reason: 'scaled down within the stabilization window', ...none };
  const win = samples.filter((s) => s.at >= now - p.windowMs);
  const known = win.map((s) => s.utilPct).filter((v): v is number => v !== null);
  const threshold = p.targetPct * (1 - TOLERANCE);
  const avg = known.length ? mean(known) : null;
  const use = avg === null || latest.utilPct === null ? avg : Math.max(avg, latest.utilPct);
  // No reading of the resource (no GPU tool) counts as room: the slots alone decide.
  const room = p.mode === 'slots' || use === null || use < threshold;
  if (!room) {
    const reason = `use ${Math.round(use ?? 0)}% is not below ${threshold}% (target ${p.targetPct}% less the 10% tolerance)`;
    return {
      kind: 'hold',
      reason,
      refill: false,
      heldByUse: starving ? { usePct: use, memPct: latest.memPct, targetPct: p.targetPct } : null,
    };
  }
  const open = { refill: true, heldByUse: null };
  if (lane.queued === 0) return { kind: 'hold', reason: 'nothing queued', ...open };
  if (free <= 0) return { kind: 'hold', reason: 'no free slot', ...open };
  const wanted = Math.min(free, lane.queued);
  if (p.mode === 'slots')
    return { kind: 'fill', count: wanted, reason: `${free} free slot(s) (lane fills by slots)`, ...open };
  const limit = growthRoom(p, mem, samples, lane.busy, now);
  if (limit === 0)
    return {
      kind: 'hold',
      reason: `grew as much as one scale-up period (${Math.round(p.scaleUpPeriodMs / 1000)}s) allows`,
      ...open,
    };
  // A CPU meter reads nothing on its first look: growth waits for a second one.
  if (samples.length < 2) return { kind: 'hold', reason: 'waiting for a second reading', ...open };
  if (use === null)
    return {
      kind: 'fill',
      count: Math.min(wanted, limit, 1),
      reason: 'no utilization reading: filling by free slots, one at a time',
      ...open,
    };
  return {
    kind: 'fill',
    count: Math.min(wanted, limit),
    reason: `use ${Math.round(use)}% below ${threshold}% (mean over ${Math.round(p.windowMs / 1000)}s and now)`,
    ...open,
  };
}
