import { describe, expect, it } from 'vitest';
import { decideLane, type LaneMemory, type LanePolicy, type Sample } from '../lib/utilization/lane-policy';

const policy: LanePolicy = {
  mode: 'utilization',
  targetPct: 80,
  windowMs: 30_000,
  memoryCeilingPct: 90,
  stabilizationMs: 300_000,
  scaleUpPeriodMs: 15_000,
  scaleUpPods: 4,
};

const flat = (n: number, utilPct: number | null, memPct = 40, busy = 0, everyMs = 1000): Sample[] =>
  Array.from({ length: n }, (_, i) => ({ at: i * everyMs, utilPct, memPct, busy }));

const fresh = (): LaneMemory => ({ lastDownAt: null, grown: [] });

/** Replays a trace through the policy the way util-controller does, one decision per tick. */
function replay(
  trace: (t: number) => { util: number; mem: number },
  seconds: number,
  lane = { slots: 8, busy: 2, queued: 100, fillWorkers: 2 },
  tickMs = 1000,
) {
  const samples: Sample[] = [];
  const mem = fresh();
  const actions: { at: number; kind: 'fill' | 'scale-down'; count: number; busyBefore: number }[] = [];
  for (let now = 0; now <= seconds * 1000; now += tickMs) {
    const { util, mem: m } = trace(now);
    samples.push({ at: now, utilPct: util, memPct: m, busy: lane.busy });
    while (samples.length && (samples[0] as Sample).at < now - policy.stabilizationMs - 1000) samples.shift();
    const d = decideLane(policy, mem, samples, lane, now);
    if (d.kind === 'fill') {
      actions.push({ at: now, kind: 'fill', count: d.count, busyBefore: lane.busy });
      mem.grown.push({ at: now, count: d.count });
      lane.busy = Math.min(lane.slots, lane.busy + d.count);
      lane.fillWorkers += d.count;
    } else if (d.kind === 'scale-down') {
      actions.push({ at: now, kind: 'scale-down', count: 1, busyBefore: lane.busy });
      mem.lastDownAt = now;
      lane.busy -= 1;
      lane.fillWorkers -= 1;
    }
  }
  return actions;
}

describe('lane policy', () => {
  it('grows at once while use is below target by more than the tolerance: no window to wait out first', () => {
    const lane = { slots: 4, busy: 0, queued: 3, fillWorkers: 0 };
    // Two readings are enough: the HPA has no stabilization window on the way up.
    expect(decideLane(policy, fresh(), flat(2, 10), lane, 1000)).toMatchObject({
      kind: 'fill',
      count: 3,
      refill: true,
    });
    // One reading is not: a CPU meter reads nothing useful on its first look.
    expect(decideLane(policy, fresh(), flat(1, 10), lane, 0)).toMatchObject({ kind: 'hold' });
    // At 75%: below target, but inside the 10% tolerance (72%): neither growth nor refill.
    expect(decideLane(policy, fresh(), flat(31, 75), lane, 30_000)).toMatchObject({ kind: 'hold', refill: false });
    // Low now but high on average over the window (a dip): no growth.
    const dip = [...flat(29, 95), { at: 29_000, utilPct: 10, memPct: 40, busy: 0 }];
    expect(decideLane(policy, fresh(), dip, lane, 29_000)).toMatchObject({ kind: 'hold', refill: false });
    // Over the memory ceiling: no fill, no refill.
    expect(decideLane(policy, fresh(), flat(31, 10, 95), lane, 30_000)).toMatchObject({ kind: 'hold', refill: false });
  });

  it('rate-limits growth as the HPA does: max(scaleUpPods, the count at the period start) per scaleUpPeriod', () => {
    const lane = { slots: 64, busy: 0, queued: 100, fillWorkers: 0 };
    const mem = fresh();
    // From nothing: scaleUpPods (4), then nothing more for the rest of the period.
    const d0 = decideLane(policy, mem, flat(2, 5), lane, 1000);
    expect(d0).toMatchObject({ kind: 'fill', count: 4 });
    mem.grown.push({ at: 1000, count: 4 });
    const s = [...flat(2, 5), ...flat(14, 5, 40, 4).map((x, i) => ({ ...x, at: 2000 + i * 1000 }))];
    expect(decideLane(policy, mem, s, { ...lane, busy: 4 }, 15_000)).toMatchObject({ kind: 'hold', refill: true });
    // A period later, 4 ran at its start: 4 more (100 %).
    expect(decideLane(policy, mem, s, { ...lane, busy: 4 }, 16_500)).toMatchObject({ kind: 'fill', count: 4 });
    // With 20 running at the period's start, 20 more at once (100 %), capped by the free slots.
    const big = flat(20, 5, 40, 20).map((x, i) => ({ ...x, at: 100_000 + i * 1000 }));
    expect(decideLane(policy, fresh(), big, { ...lane, busy: 20 }, 119_000)).toMatchObject({ kind: 'fill', count: 20 });
    expect(decideLane(policy, fresh(), big, { ...lane, slots: 25, busy: 20 }, 119_000)).toMatchObject({
      kind: 'fill',
      count: 5,
    });
    // The policy settable to the literal max(1, running): from nothing, one.
    expect(decideLane({ ...policy, scaleUpPods: 1 }, fresh(), flat(2, 5), lane, 1000)).toMatchObject({
      kind: 'fill',
      count: 1,
    });
  });

  it('a replay never grows a lane faster than the limit allows in any period', () => {
    const actions = replay((t) => ({ util: 20 + 10 * Math.sin(t / 7000), mem: 50 }), 120, {
      slots: 64,
      busy: 0,
      queued: 1000,
      fillWorkers: 0,
    });
    expect(actions.length).toBeGreaterThan(2);
    for (const a of actions) {
      const inPeriod = actions.filter((b) => b.kind === 'fill' && b.at > a.at - policy.scaleUpPeriodMs && b.at <= a.at);
      const start = inPeriod[0]?.busyBefore ?? 0;
      expect(inPeriod.reduce((n, b) => n + b.count, 0)).toBeLessThanOrEqual(Math.max(policy.scaleUpPods, start));
    }
  });

  it('slots lanes fill every free slot at once and ignore use', () => {
    const p: LanePolicy = { ...policy, mode: 'slots' };
    expect(
      decideLane(p, fresh(), flat(2, 100), { slots: 16, busy: 0, queued: 11, fillWorkers: 0 }, 1000),
    ).toMatchObject({ kind: 'fill', count: 11, refill: true });
  });

  it('held back by use with work queued and a slot free: heldByUse carries the evidence; not when nothing waits', () => {
    const d = decideLane(policy, fresh(), flat(10, 97), { slots: 2, busy: 0, queued: 3, fillWorkers: 0 }, 9000);
    expect(d).toMatchObject({ kind: 'hold', refill: false, heldByUse: { usePct: 97, targetPct: 80, memPct: 40 } });
    expect(
      decideLane(policy, fresh(), flat(10, 97), { slots: 2, busy: 0, queued: 0, fillWorkers: 0 }, 9000).heldByUse,
    ).toBeNull();
    expect(
      decideLane(policy, fresh(), flat(10, 97), { slots: 2, busy: 2, queued: 3, fillWorkers: 2 }, 9000).heldByUse,
    ).toBeNull();
  });

  it('scales down only after memory stays over the ceiling for the stabilization window', () => {
    const lane = { slots: 4, busy: 2, queued: 0, fillWorkers: 2 };
    expect(decideLane(policy, fresh(), flat(200, 50, 95), lane, 199_000).kind).toBe('hold');
    expect(decideLane(policy, fresh(), flat(301, 50, 95), lane, 300_000).kind).toBe('scale-down');
    // After a scale-down: no growth and no refill for the stabilization window.
    const after = decideLane(
      policy,
      { lastDownAt: 300_000, grown: [] },
      flat(400, 10, 50).map((x) => ({ ...x, at: x.at })),
      { slots: 4, busy: 1, queued: 3, fillWorkers: 1 },
      399_000,
    );
    expect(after).toMatchObject({ kind: 'hold', refill: false });
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
    const actions = replay(trace, 4000, { slots: 400, busy: 2, queued: 100_000, fillWorkers: 2 });
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
    }
  });

  it('memory held high for long does scale down, once per window', () => {
    const actions = replay(() => ({ util: 50, mem: 96 }), 1000);
    const downs = actions.filter((a) => a.kind === 'scale-down').map((a) => a.at);
    expect(downs.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < downs.length; i++)
      expect((downs[i] as number) - (downs[i - 1] as number)).toBeGreaterThanOrEqual(policy.stabilizationMs);
  });
});
