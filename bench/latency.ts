// Detection and recovery latency against a real swarm, and the same faults
// under PM2 alone as the baseline. Every figure is read from event
// timestamps, or from PM2's own process list for the baseline.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { OPTIMIZER, optimizerJob, PM2, TestSwarm } from '../test/helpers/swarm';
import { waitFor } from '../test/helpers/tmp';
import { readProcStat } from '../lib/proc';
import { DAEMON_NAMES, type DaemonName } from '../lib/event-kinds';
import { DAEMON_STATE_FILES, DaemonHeaderSchema } from '../lib/state-files';
import { readStateFile } from '../lib/state-store';
import { quantileBound, type Histogram } from '../lib/timings';
import { z } from 'zod';

export interface Sampled {
  name: string;
  unit: string;
  runs: number[];
  note?: string;
}

const ts = (iso: string): number => Date.parse(iso);
const WARM_TICKS = 10;

/**
 * Proportional set size: RSS with each shared page divided among the
 * processes that map it. Six daemons share Node's binary and libraries, so
 * PSS is what each one adds to the machine; RSS counts those pages six times.
 */
function pssBytes(pid: number): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export async function swarmLatency(repeats: number): Promise<Sampled[]> {
  const swarm = new TestSwarm({
    name: 'bench',
    tick: '1s',
    consensus: { breaker: { failures: 1000 } },
    lanes: { cpu: { kind: 'cpu', slots: 4, fill: 'slots' } },
    jobs: {
      crashy: optimizerJob(['--trials', '1000000'], {
        progress: { staleAfter: '3s' },
        restart: { delay: '100ms', budget: 1000 },
        stagnationAfter: 1000,
      }),
      hangy: optimizerJob(['--trials', '1000000'], {
        progress: { staleAfter: '3s' },
        restart: { delay: '100ms', budget: 1000 },
        stagnationAfter: 1000,
      }),
      slow: optimizerJob(['--trials', '1000000', '--slow-start-ms', '600000', '--fault-attempts', '0'], {
        startup: { marker: 'optimizer ready', within: '2s' },
        restart: { delay: '100ms', maxDelay: '100ms', budget: 1000 },
        stagnationAfter: 1000,
      }),
    },
    // The slow starter is submitted only after the crash and hang figures: it is restarted
    // every few seconds, and an exit that lands while the sentry is ending another worker
    // waits for that (~100 ms), which is a different figure from detection itself.
    queue: [
      { job: 'crashy', id: 'c' },
      { job: 'hangy', id: 'h' },
    ],
  });
  const crash: number[] = [];
  const recovery: number[] = [];
  const hang: number[] = [];
  const startup: number[] = [];
  try {
    swarm.up();
    for (let i = 1; i <= repeats; i++) {
      const pid = await swarm.workerPid('crashy-c', i);
      await waitFor('progress', () => swarm.query().workers.find((w) => w.id === 'crashy-c')?.progressAgeMs !== null);
      const t0 = Date.now();
      process.kill(pid, 'SIGKILL');
      // The third kill in a row is rightly a crash_loop: any detection of this pid counts.
      const d = await swarm.waitEvent('detect', 'worker:crashy-c', (e) => e.data.pid === pid, 60_000);
      crash.push(ts(d.ts) - t0);
      const v = await swarm.waitEvent('action.verified', 'worker:crashy-c', (e) => e.data.incidentId === d.seq, 60_000);
      recovery.push(ts(v.ts) - t0);
    }
    for (let i = 1; i <= repeats; i++) {
      const pid = await swarm.workerPid('hangy-h', i);
      process.kill(pid, 'SIGSTOP');
      const d = await swarm.waitEvent('detect.progress_stale', 'worker:hangy-h', (e) => e.data.pid === pid, 60_000);
      hang.push(Number(d.data.progressAgeMs) - Number(d.data.staleAfterMs));
    }
    if (swarm.ctl('submit', 'slow', '--id', 's').status !== 0) throw new Error('cannot submit the slow starter');
    await swarm.waitEvent('worker.launched', 'worker:slow-s');
    const launches = swarm.events({ kind: 'worker.launched', target: 'worker:slow-s' });
    const misses = await waitFor(
      'startup misses',
      () => {
        const m = swarm.events({ kind: 'detect.startup_gate_missed', target: 'worker:slow-s' });
        return m.length >= Math.min(repeats, 3) ? m : null;
      },
      120_000,
      500,
    );
    for (const m of misses) {
      const launch = [...swarm.events({ kind: 'worker.launched', target: 'worker:slow-s' }), ...launches].filter(
        (l) => l.data.attempt === m.data.attempt,
      )[0];
      if (launch) startup.push(ts(m.ts) - ts(launch.ts) - 2000);
    }
  } finally {
    swarm.teardown();
  }
  return [
    { name: 'crash detection (kill -9 to detect.worker_crashed)', unit: 'ms', runs: crash },
    {
      name: 'hang detection past the threshold (SIGSTOP; progress age minus staleAfter)',
      unit: 'ms',
      runs: hang,
      note: 'tick 1s',
    },
    { name: 'missed startup marker, detection past the gate', unit: 'ms', runs: startup, note: 'tick 1s' },
    { name: 'time to verified recovery after a crash', unit: 'ms', runs: recovery },
  ];
}

/** CPU (% of one core) and RSS of each daemon, idle, over a sampling period. */
const TickSecondsSchema = z.looseObject({
  tickSeconds: z.object({
    le: z.array(z.number()),
    counts: z.array(z.number()),
    sumSeconds: z.number(),
    count: z.number(),
  }),
});

/** What `later` counted that `earlier` had not: the observations between two readings. */
function histogramSince(later: Histogram, earlier: Histogram): Histogram {
  return {
    le: later.le,
    counts: later.counts.map((c, i) => c - (earlier.counts[i] ?? 0)),
    sumSeconds: later.sumSeconds - earlier.sumSeconds,
    count: later.count - earlier.count,
  };
}

export async function controlPlaneCost(workers: number, sampleMs: number): Promise<Sampled[]> {
  const swarm = new TestSwarm({
    name: 'idle',
    tick: '1s',
    lanes: { cpu: { kind: 'cpu', slots: Math.max(1, workers), fill: 'slots' } },
    jobs: { sleeper: { command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'] } },
    queue: Array.from({ length: workers }, (_, i) => ({ job: 'sleeper', id: `s${i}` })),
  });
  try {
    swarm.up();
    // Launches go through PM2 one at a time: on two cores, 100 take minutes.
    await waitFor(
      'workers up',
      () => swarm.query().workers.filter((w) => w.status === 'running').length >= workers,
      Math.max(120_000, workers * 6000),
      1000,
    );
    // Idle means steady: every daemon online and past its first WARM_TICKS ticks since the
    // last launch, so start-up work (module compilation, first reads) is not sampled.
    const ticksAt = (name: DaemonName): number => {
      const r = readStateFile(path.join(swarm.stateDir, DAEMON_STATE_FILES[name]), DaemonHeaderSchema);
      return r.ok ? r.value.ticks : 0;
    };
    const tickHistogram = (name: DaemonName): Histogram | null => {
      const r = readStateFile(path.join(swarm.stateDir, DAEMON_STATE_FILES[name]), TickSecondsSchema);
      return r.ok ? r.value.tickSeconds : null;
    };
    const base = new Map(DAEMON_NAMES.map((n) => [n, ticksAt(n)]));
    const daemons = await waitFor(
      'daemons online and warm',
      () => {
        const ds = swarm.query().daemons;
        const warm =
          ds.length === DAEMON_NAMES.length &&
          ds.every(
            (d) =>
              d.status === 'online' &&
              d.pid !== null &&
              ticksAt(d.name as DaemonName) >= (base.get(d.name as DaemonName) ?? 0) + WARM_TICKS,
          );
        return warm ? ds : null;
      },
      120_000,
      500,
    );
    const ticksLaunching = new Map(DAEMON_NAMES.map((n) => [n, tickHistogram(n)]));
    const first = new Map(daemons.map((d) => [d.name, readProcStat(d.pid as number)]));
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, sampleMs));
    const secs = (Date.now() - t0) / 1000;
    const cpu: number[] = [];
    const rss: number[] = [];
    const pss: number[] = [];
    for (const d of daemons) {
      const a = first.get(d.name);
      const b = readProcStat(d.pid as number);
      if (!a || !b) continue;
      cpu.push(Math.round(((b.cpuTicks - a.cpuTicks) / 100 / secs) * 1000) / 10);
      rss.push(Math.round((b.rssBytes / 1048576) * 10) / 10);
      const p = pssBytes(d.pid as number);
      if (p !== null) pss.push(Math.round((p / 1048576) * 10) / 10);
    }
    // Tick p99 per daemon: over everything up to now (start-up and every launch), and over the idle sample.
    const p99Ms = (h: Histogram | null) => {
      const q = h ? quantileBound(h, 0.99) : null;
      return q === null ? NaN : q * 1000;
    };
    const tickLaunching: number[] = [];
    const tickIdle: number[] = [];
    for (const d of daemons) {
      const before = ticksLaunching.get(d.name as DaemonName) ?? null;
      const after = tickHistogram(d.name as DaemonName);
      tickLaunching.push(p99Ms(before));
      tickIdle.push(p99Ms(after && before ? histogramSince(after, before) : null));
    }
    const note = `runs in order: ${daemons.map((d) => d.name).join(', ')}`;
    return [
      {
        name: `control plane CPU per daemon, idle, ${workers} workers (% of a core; one run per daemon)`,
        unit: '%',
        runs: cpu,
        note,
      },
      {
        name: `control plane RSS per daemon, idle, ${workers} workers (one run per daemon)`,
        unit: 'MiB',
        runs: rss,
        note,
      },
      {
        name: `tick p99 per daemon, from start through launching ${workers} workers (ms, bucket bound; one run per daemon)`,
        unit: 'ms',
        runs: tickLaunching,
        note,
      },
      {
        name: `tick p99 per daemon, idle, ${workers} workers (ms, bucket bound; one run per daemon)`,
        unit: 'ms',
        runs: tickIdle,
        note,
      },
      {
        name: `control plane PSS per daemon, idle, ${workers} workers (shared pages divided among processes; one run per daemon)`,
        unit: 'MiB',
        runs: pss,
        note,
      },
    ];
  } finally {
    swarm.teardown();
  }
}

/** PM2 alone: how long until a kill -9 worker is back, and whether a SIGSTOPped one is ever noticed. */
export async function pm2Baseline(repeats: number, hangWaitMs: number): Promise<Sampled[]> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'swarm-pm2-'));
  // The optimizer keeps its checkpoint in the temp folder too, not in the checkout.
  const env = { ...process.env, PM2_HOME: home, SWARM_CHECKPOINT_DIR: path.join(home, 'checkpoint') };
  const pm2 = (...args: string[]) => spawnSync(PM2, args, { env, encoding: 'utf8' });
  const pidOf = (name: string): number => Number(pm2('pid', name).stdout.trim()) || 0;
  const back: number[] = [];
  try {
    pm2('start', OPTIMIZER, '--name', 'w', '--', '--trials', '1000000');
    for (let i = 0; i < repeats; i++) {
      const pid = await waitFor('pm2 pid', () => pidOf('w'), 30_000, 50);
      const t0 = Date.now();
      process.kill(pid, 'SIGKILL');
      await waitFor(
        'pm2 restart',
        () => {
          const p = pidOf('w');
          return p && p !== pid ? p : 0;
        },
        60_000,
        20,
      );
      back.push(Date.now() - t0);
    }
    const pid = await waitFor('pm2 pid', () => pidOf('w'), 30_000, 50);
    process.kill(pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, hangWaitMs));
    const noticed = pidOf('w') !== pid;
    process.kill(pid, 'SIGCONT');
    return [
      { name: 'PM2 alone: kill -9 to a new pid (restart, no detection event)', unit: 'ms', runs: back },
      {
        name: `PM2 alone: SIGSTOPped worker noticed within ${hangWaitMs / 1000}s`,
        unit: 'noticed',
        runs: [noticed ? 1 : 0],
        note: noticed ? 'noticed' : 'never noticed: PM2 keeps a hung process "online"',
      },
    ];
  } finally {
    pm2('kill');
    fs.rmSync(home, { recursive: true, force: true });
  }
}
