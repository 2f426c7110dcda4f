// How fast a queue drains, and how long a queued task waits for its first
// pid on a machine made busy with stress-ng. Every figure is read from event
// timestamps of a real swarm under real PM2.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { StoredEvent } from '../lib/event-kinds';
import { ROOT, TestSwarm } from '../test/helpers/swarm';
import { mayInstall, missingPackages } from '../test/helpers/system-packages';
import installMissing from '../test/setup/system-packages';
import { waitFor } from '../test/helpers/tmp';
import type { Sampled } from './latency';
import { z } from 'zod';
import { DAEMON_STATE_FILES } from '../lib/state-files';
import { readStateFile } from '../lib/state-store';
import { quantileBound } from '../lib/timings';

const SLEEP = path.join(ROOT, 'test', 'fixtures', 'sleep.js');
const ts = (e: StoredEvent): number => Date.parse(e.ts);

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};

/**
 * Slot idle time between two tasks: each start after the lane's first
 * `slots` starts takes the slot of the earliest ended task not yet reused.
 */
function slotGaps(events: StoredEvent[], slots: number): number[] {
  const ended: number[] = [];
  const gaps: number[] = [];
  let starts = 0;
  for (const e of events) {
    if (e.kind === 'task.completed') ended.push(ts(e));
    if (e.kind !== 'task.started') continue;
    starts += 1;
    if (starts <= slots) continue;
    const freedAt = ended.shift();
    if (freedAt !== undefined) gaps.push(ts(e) - freedAt);
  }
  return gaps;
}

/** Drains `tasks` sleeps of `taskMs` on a 2-slot lane filled by `fill`; returns the figures of one run. */
async function drainOnce(
  fill: 'utilization' | 'slots',
  tasks: number,
  taskMs: number,
): Promise<{ spanMs: number; perSecond: number; gaps: number[]; peak: number }> {
  const swarm = new TestSwarm({
    name: 'bench-drain',
    lanes: { cpu: { kind: 'cpu', slots: 2, fill } },
    jobs: { nap: { command: ['node', SLEEP, String(taskMs)] } },
    queue: Array.from({ length: tasks }, (_, i) => ({ job: 'nap', id: `n${i + 1}` })),
  });
  try {
    swarm.up();
    await waitFor(
      'the queue drained',
      () => swarm.events({ kind: 'task.completed' }).length === tasks || null,
      180_000,
      250,
    );
    const events = swarm.events().filter((e) => e.kind === 'task.started' || e.kind === 'task.completed');
    const first = events.find((e) => e.kind === 'task.started');
    const last = events.filter((e) => e.kind === 'task.completed').at(-1);
    if (!first || !last) throw new Error('no task started or completed');
    let running = 0;
    let peak = 0;
    for (const e of events) {
      running += e.kind === 'task.started' ? 1 : -1;
      peak = Math.max(peak, running);
    }
    const spanMs = ts(last) - ts(first);
    return { spanMs, perSecond: tasks / (spanMs / 1000), gaps: slotGaps(events, 2), peak };
  } finally {
    swarm.teardown();
  }
}

export async function queueDrain(repeats: number): Promise<Sampled[]> {
  const out: Sampled[] = [];
  for (const fill of ['utilization', 'slots'] as const) {
    const spans: number[] = [];
    const rates: number[] = [];
    const gaps: number[] = [];
    const peaks: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const r = await drainOnce(fill, 5, 1500);
      spans.push(r.spanMs);
      rates.push(r.perSecond);
      gaps.push(...r.gaps);
      peaks.push(r.peak);
    }
    const note = `most at once: ${Math.max(...peaks)} of 2 slots`;
    out.push({
      name: `queue drain, ${fill} lane: 5 tasks of 1.5 s on 2 slots, first start to last completion`,
      unit: 'ms',
      runs: spans,
      note,
    });
    out.push({
      name: `queue drain, ${fill} lane: tasks per second`,
      unit: 'tasks/s',
      runs: rates.map((r) => Math.round(r * 100) / 100),
    });
    out.push({
      name: `queue drain, ${fill} lane: slot idle between two tasks, p50`,
      unit: 'ms',
      runs: [percentile(gaps, 50)],
      note: `${gaps.length} refills`,
    });
    out.push({
      name: `queue drain, ${fill} lane: slot idle between two tasks, p99`,
      unit: 'ms',
      runs: [percentile(gaps, 99)],
      note: `${gaps.length} refills`,
    });
  }
  return out;
}

/**
 * queued → running (the worker's pid known to the sentry) for a task
 * submitted to a running swarm's slots lane, with `stress-ng --cpu 2`
 * keeping every core busy. A utilization lane rightly holds on such a
 * machine (lane_starved says so); a slots lane must not lag.
 */
export async function queuedToRunningUnderLoad(repeats: number): Promise<Sampled[]> {
  if (missingPackages(['stress-ng']).length > 0 && mayInstall()) installMissing();
  if (missingPackages(['stress-ng']).length > 0)
    return [
      {
        name: 'queued → running under stress-ng --cpu 2',
        unit: 'ms',
        runs: [],
        note: 'skipped: stress-ng is not installed (apt-get install stress-ng)',
      },
    ];
  const swarm = new TestSwarm({
    name: 'bench-load',
    lanes: { cpu: { kind: 'cpu', slots: 4, fill: 'slots' } },
    jobs: { nap: { command: ['node', SLEEP, '500'] } },
  });
  const stress = spawn('stress-ng', ['--cpu', '2', '--timeout', '600s', '--quiet'], { stdio: 'ignore' });
  const runs: number[] = [];
  try {
    swarm.up();
    await waitFor(
      'every daemon online',
      () => swarm.query().daemons.every((d) => d.status === 'online') || null,
      120_000,
      500,
    );
    for (let i = 1; i <= repeats; i++) {
      const id = `load${i}`;
      if (swarm.ctl('submit', 'nap', '--id', id).status !== 0) throw new Error(`cannot submit ${id}`);
      await swarm.waitEvent('task.completed', `task:${id}`, () => true, 120_000);
      // The shim writes pid.json the moment the worker process exists: that is "running".
      const queued = swarm.events({ kind: 'task.queued', target: `task:${id}` })[0];
      const pidFile = path.join(swarm.stateDir, 'workers', `nap-${id}`, 'pid.json');
      if (!queued) throw new Error(`no task.queued for ${id}`);
      runs.push(fs.statSync(pidFile).mtimeMs - Date.parse(queued.ts));
    }
  } finally {
    stress.kill('SIGKILL');
    swarm.teardown();
  }
  return [{ name: 'queued → running under stress-ng --cpu 2 (submit to pid known, slots lane)', unit: 'ms', runs }];
}

const HistogramSchema = z.object({
  le: z.array(z.number()),
  counts: z.array(z.number()),
  sumSeconds: z.number(),
  count: z.number(),
});
const SentryTimingsSchema = z.looseObject({ launchDecisionSeconds: HistogramSchema });

/**
 * 1,000 queued tasks (each a Node process that exits at once) drained on 8
 * slots by a real swarm under real PM2. Swarm's own time per launch decision
 * is the sentry's launchDecisionSeconds: the CPU time of the queue read, the
 * record, the events and the worker's files, PM2's start excluded
 * (lib/sentry/lane-filler.ts).
 */
export async function thousandTaskDrain(tasks = 1000): Promise<Sampled[]> {
  const swarm = new TestSwarm({
    name: 'bench-1000',
    lanes: { cpu: { kind: 'cpu', slots: 8, fill: 'slots' } },
    jobs: { nap: { command: ['node', SLEEP, '0'] } },
    queue: Array.from({ length: tasks }, (_, i) => ({ job: 'nap', id: `t${i + 1}` })),
  });
  try {
    swarm.up();
    await waitFor(
      `${tasks} tasks drained`,
      () => (swarm.query().tasks.completed >= tasks ? true : null),
      tasks * 3000,
      2000,
    );
    const r = readStateFile(path.join(swarm.stateDir, DAEMON_STATE_FILES['worker-sentry']), SentryTimingsSchema);
    if (!r.ok) throw new Error(`sentry state unreadable: ${r.error.message}`);
    const h = r.value.launchDecisionSeconds;
    const started = swarm.events({ kind: 'task.started' });
    const done = swarm.events({ kind: 'task.completed' });
    const spanMs = ts(done.at(-1) as StoredEvent) - ts(started[0] as StoredEvent);
    const within = (le: number) => h.counts[h.le.indexOf(le)] ?? 0;
    const note = `${h.count} launch decisions, ${Math.round((100 * within(0.005)) / Math.max(1, h.count))} % within 5 ms; drained in ${Math.round(spanMs / 1000)} s`;
    return [
      {
        name: `${tasks} queued tasks: Swarm's own CPU time per launch decision, mean (PM2's start excluded)`,
        unit: 'ms',
        runs: [Math.round((h.sumSeconds / Math.max(1, h.count)) * 1e4) / 10],
        note,
      },
      {
        name: `${tasks} queued tasks: Swarm's own CPU time per launch decision, p99 (bucket bound)`,
        unit: 'ms',
        runs: [(quantileBound(h, 0.99) ?? NaN) * 1000],
        note,
      },
      { name: `${tasks} queued tasks: drained, first start to last completion`, unit: 's', runs: [spanMs / 1000] },
    ];
  } finally {
    swarm.teardown();
  }
}
