import { describe, expect, it } from 'vitest';
import { decideLane, type LaneMemory, type LanePolicy, type Sample } from '../lib/util/lane-policy';

const policy: LanePolicy = { targetPct: 80, windowMs: 30_000, memoryCeilingPct: 90, stabilizationMs: 300_000 };

/** Replays a trace through the policy the way util-controller does, one decision per tick. */
function replay(trace: (t: number) => { util: number; mem: number }, seconds: number, tickMs = 1000) {
  const samples: Sample[] = [];
  const mem: LaneMemory = { lastUpAt: null, lastDownAt: null };
  const lane = { slots: 8, busy: 2, queued: 100, fillWorkers: 2 };
  const actions: { at: number; kind: 'fill' | 'scale-down' }[] = [];
  for (let now = 0; now <= seconds * 1000; now += tickMs) {
    const { util, mem: m } = trace(now);
    samples.push({ at: now, utilPct: util, memPct: m });
    while (samples.length && (samples[0] as Sample).at < now - policy.stabilizationMs - 1000) samples.shift();
    const d = decideLane(policy, mem, samples, lane, now);
    if (d.kind === 'fill') {
      actions.push({ at: now, kind: 'fill' });
      mem.lastUpAt = now;
      lane.busy = Math.min(lane.slots, lane.busy + d.count);
      lane.fillWorkers += d.count;
    } else if (d.kind === 'scale-down') {
      actions.push({ at: now, kind: 'scale-down' });
      mem.lastDownAt = now;
      lane.busy -= 1;
      lane.fillWorkers -= 1;
    }
  }
  return actions;
}

describe('lane policy', () => {
  it('fills only after a whole window below target by more than the tolerance', () => {
    const mem: LaneMemory = { lastUpAt: null, lastDownAt: null };
    const lane = { slots: 4, busy: 0, queued: 3, fillWorkers: 0 };
    const low = (n: number): Sample[] => Array.from({ length: n }, (_, i) => ({ at: i * 1000, utilPct: 10, memPct: 40 }));
    expect(decideLane(policy, mem, low(10), lane, 9000).kind).toBe('hold');
    const d = decideLane(policy, mem, low(31), lane, 30_000);
    expect(d).toMatchObject({ kind: 'fill', count: 3 });
    // At 75%: below target, but inside the 10% tolerance (72%): no fill.
    const near = Array.from({ length: 31 }, (_, i) => ({ at: i * 1000, utilPct: 75, memPct: 40 }));
    expect(decideLane(policy, mem, near, lane, 30_000).kind).toBe('hold');
    // Over the memory ceiling: no fill.
    const full = Array.from({ length: 31 }, (_, i) => ({ at: i * 1000, utilPct: 10, memPct: 95 }));
    expect(decideLane(policy, mem, full, { ...lane, fillWorkers: 0 }, 30_000).kind).toBe('hold');
  });

  it('scales down only after memory stays over the ceiling for the stabilization window', () => {
    const mem: LaneMemory = { lastUpAt: null, lastDownAt: null };
    const lane = { slots: 4, busy: 2, queued: 0, fillWorkers: 2 };
    const over = (n: number): Sample[] => Array.from({ length: n }, (_, i) => ({ at: i * 1000, utilPct: 50, memPct: 95 }));
    expect(decideLane(policy, mem, over(200), lane, 199_000).kind).toBe('hold');
    expect(decideLane(policy, mem, over(301), lane, 300_000).kind).toBe('scale-down');
  });

  it('a recorded noisy trace never flaps: opposite actions are a stabilization window apart', () => {
    // Three phases: memory swinging across the ceiling every 200 s with noise (fills in the
    // low half, never a scale-down); memory held high (scale-downs, each a window apart); then
    // calm (fills again, but only a stabilization window after the last scale-down).
    const noise = (s: number) => 3 * Math.sin(s * 1.7) + 2 * Math.sin(s * 0.37);
    const trace = (t: number) => {
      const s = t / 1000;
      const util = 40 + 15 * Math.sin(s / 9) + noise(s);
      if (s < 1200) return { util, mem: (Math.floor(s / 200) % 2 === 0 ? 80 : 97) + noise(s) };
      if (s < 3000) return { util, mem: 96 + noise(s) / 3 };
      return { util, mem: 60 + noise(s) };
    };
    const actions = replay(trace, 4000);
    const fills = actions.filter((a) => a.kind === 'fill');
    const downs = actions.filter((a) => a.kind === 'scale-down');
    expect(fills.filter((a) => a.at < 1_200_000).length).toBeGreaterThan(0);
    expect(downs.filter((a) => a.at < 1_200_000)).toHaveLength(0);
    expect(downs.length).toBeGreaterThanOrEqual(3);
    expect(fills.filter((a) => a.at > 3_000_000).length).toBeGreaterThan(0);
    for (let i = 1; i < actions.length; i++) {
      const a = actions[i - 1] as { at: number; kind: string };
      const b = actions[i] as { at: number; kind: string };
      if (a.kind !== b.kind) expect(b.at - a.at).toBeGreaterThanOrEqual(policy.stabilizationMs);
      else expect(b.at - a.at).toBeGreaterThanOrEqual(policy.windowMs);
    }
  });

  it('memory held high for long does scale down, once per window', () => {
    const actions = replay(() => ({ util: 50, mem: 96 }), 1000);
    const downs = actions.filter((a) => a.kind === 'scale-down').map((a) => a.at);
    expect(downs.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < downs.length; i++) expect((downs[i] as number) - (downs[i - 1] as number)).toBeGreaterThanOrEqual(policy.stabilizationMs);
  });
});
