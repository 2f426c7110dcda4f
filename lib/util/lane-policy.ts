// When to fill a lane and when to back off, as pure functions of a sample
// window, so a recorded utilization trace can prove the policy never flaps.
//
// Fill (scale up), as Kubernetes' HPA: the lane's resource has been below
// target by more than the 10% tolerance for the whole window, work is
// queued, a slot is free and memory is under its ceiling. How many at once
// follows the HPA's ratio: enough to bring use up to target, at least one.
// After any change the next decision waits for a fresh full window.
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
}

export interface LanePolicy {
  /** 'slots': fill whenever a slot is free, without looking at utilization. */
  mode?: 'utilization' | 'slots';
  targetPct: number;
  windowMs: number;
  memoryCeilingPct: number;
  stabilizationMs: number;
}

export interface LaneMemory {
  lastUpAt: number | null;
  lastDownAt: number | null;
}

export type LaneDecision =
  | { kind: 'fill'; count: number; reason: string }
  | { kind: 'scale-down'; reason: string }
  | { kind: 'hold'; reason: string };

const covers = (samples: Sample[], from: number): boolean => samples.length > 0 && (samples[0] as Sample).at <= from;

export function decideLane(
  p: LanePolicy,
  mem: LaneMemory,
  samples: Sample[],
  lane: { slots: number; busy: number; queued: number; fillWorkers: number },
  now: number,
): LaneDecision {
  const latest = samples[samples.length - 1];
  if (!latest) return { kind: 'hold', reason: 'no samples yet' };
  const stable = samples.filter((s) => s.at >= now - p.stabilizationMs);
  const sinceDown = mem.lastDownAt === null ? Infinity : now - mem.lastDownAt;
  if (latest.memPct > p.memoryCeilingPct) {
    if (lane.fillWorkers === 0) return { kind: 'hold', reason: 'memory over the ceiling, but no fill worker to stop' };
    if (!covers(samples, now - p.stabilizationMs) || stable.some((s) => s.memPct <= p.memoryCeilingPct)) {
      return { kind: 'hold', reason: `memory ${latest.memPct}% over the ceiling ${p.memoryCeilingPct}%: waiting out the stabilization window` };
    }
    if (sinceDown < p.stabilizationMs) return { kind: 'hold', reason: 'scaled down within the stabilization window' };
    return { kind: 'scale-down', reason: `memory over ${p.memoryCeilingPct}% for ${Math.round(p.stabilizationMs / 1000)}s (now ${latest.memPct}%)` };
  }
  const free = lane.slots - lane.busy;
  if (lane.queued === 0) return { kind: 'hold', reason: 'nothing queued' };
  if (free <= 0) return { kind: 'hold', reason: 'no free slot' };
  if (sinceDown < p.stabilizationMs) return { kind: 'hold', reason: 'scaled down within the stabilization window' };
  if (p.mode === 'slots') return { kind: 'fill', count: Math.min(free, lane.queued), reason: `${free} free slot(s) (lane fills by slots)` };
  const windowStart = Math.max(now - p.windowMs, mem.lastUpAt ?? -Infinity);
  if (mem.lastUpAt !== null && now - mem.lastUpAt < p.windowMs) return { kind: 'hold', reason: 'waiting for a fresh window after the last fill' };
  const win = samples.filter((s) => s.at >= windowStart);
  if (!covers(samples, now - p.windowMs)) return { kind: 'hold', reason: 'not a full window of samples yet' };
  if (win.some((s) => s.memPct > p.memoryCeilingPct)) return { kind: 'hold', reason: 'memory went over the ceiling in the window' };
  const known = win.filter((s): s is Sample & { utilPct: number } => s.utilPct !== null);
  const threshold = p.targetPct * (1 - TOLERANCE);
  if (known.length === 0) {
    // No reading of the resource (no GPU tool): fall back to the slots alone, one at a time.
    return { kind: 'fill', count: 1, reason: 'no utilization reading: filling by free slots' };
  }
  if (known.some((s) => s.utilPct >= threshold)) return { kind: 'hold', reason: `use reached ${Math.max(...known.map((s) => s.utilPct))}% in the window (fill below ${threshold}%)` };
  const avg = known.reduce((a, s) => a + s.utilPct, 0) / known.length;
  const wanted = Math.max(1, Math.ceil((lane.slots * (p.targetPct - avg)) / p.targetPct));
  const count = Math.min(free, lane.queued, wanted);
  return { kind: 'fill', count, reason: `use ${Math.round(avg)}% below ${threshold}% for ${Math.round(p.windowMs / 1000)}s` };
}
