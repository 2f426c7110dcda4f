import path from 'node:path';
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import { z } from 'zod';
import type { CompiledConfig } from '../config/config';
import type { Db } from '../db';
import { DAEMON_NAMES } from '../event-kinds';
import { NotifyCursors } from '../notify/cursors';
import { buildSnapshot, type Snapshot } from '../snapshot';
import { DAEMON_STATE_FILES } from '../state-files';
import { readStateFile } from '../state-store';

// GET /metrics: the swarm in Prometheus' text format, made with prom-client
// and read at scrape time from what the swarm already keeps (the snapshot
// `query` prints, swarm.db, each daemon's state file), so operator-gateway
// holds no numbers of its own that a restart could lose. The totals are
// counts over the append-only event log, so they never go back.
//
// Labels stay bounded: class and type are closed enums; job, lane, gpu,
// endpoint and daemon come from the config or the code. No label is per
// worker or per task.

type Totals = Map<string, number>;
const key = (...parts: string[]) => parts.join('\u0000');
const unkey = (k: string) => k.split('\u0000');

/** Counts over the event log since seq 0, kept up to date by reading only what was appended since the last scrape. */
class LogTotals {
  private lastSeq = 0;
  readonly detections: Totals = new Map();
  readonly actions: Totals = new Map();
  readonly restarts: Totals = new Map();

  update(db: Db): void {
    const last = db.prepare<[], { m: number | null }>('SELECT max(seq) AS m FROM events').get()?.m ?? 0;
    if (last <= this.lastSeq) return;
    const add = (t: Totals, k: string, n: number) => t.set(k, (t.get(k) ?? 0) + n);
    for (const r of db
      .prepare<[number, number], { kind: string; n: number }>(
        "SELECT kind, count(*) AS n FROM events WHERE seq > ? AND seq <= ? AND kind LIKE 'detect.%' GROUP BY kind",
      )
      .all(this.lastSeq, last))
      add(this.detections, r.kind.slice('detect.'.length), r.n);
    for (const r of db
      .prepare<[number, number], { type: string | null; kind: string; n: number }>(
        `SELECT coalesce(json_extract(e.data, '$.type'), json_extract(p.data, '$.type')) AS type, e.kind, count(*) AS n
         FROM events e LEFT JOIN events p ON p.seq = e.action_id
         WHERE e.seq > ? AND e.seq <= ? AND e.kind LIKE 'action.%' GROUP BY 1, 2`,
      )
      .all(this.lastSeq, last))
      add(this.actions, key(r.type ?? 'unknown', r.kind.slice('action.'.length)), r.n);
    for (const r of db
      .prepare<[number, number], { job: string | null; n: number }>(
        `SELECT json_extract(data, '$.job') AS job, count(*) AS n FROM events
         WHERE seq > ? AND seq <= ? AND kind = 'worker.launched' AND json_extract(data, '$.attempt') > 1 GROUP BY 1`,
      )
      .all(this.lastSeq, last))
      add(this.restarts, r.job ?? 'unknown', r.n);
    this.lastSeq = last;
  }
}

const HistogramSchema = z
  .object({ le: z.array(z.number()), counts: z.array(z.number()), sumSeconds: z.number(), count: z.number() })
  .nullable()
  .catch(null)
  .default(null);
const DaemonHistogramsSchema = z.looseObject({ appendSeconds: HistogramSchema, tickSeconds: HistogramSchema });

export interface MetricsSource {
  config: () => CompiledConfig;
  /** swarm.db, opened by the daemon that serves the metrics. */
  db: Db;
}

/** The registry GET /metrics serves; every value is read when Prometheus asks. */
export function swarmRegistry(src: MetricsSource): Registry {
  const registry = new Registry();
  const totals = new LogTotals();
  // One snapshot per scrape, shared by the gauges below: prom-client collects them in turn.
  let snap: Snapshot | null = null;
  const snapshot = (): Snapshot => (snap ??= buildSnapshot(src.config()));
  const fresh = () => {
    snap = null;
    totals.update(src.db);
  };

  new Counter({
    name: 'swarm_detections_total',
    help: 'Failures detected, by failure class (docs/events.md).',
    labelNames: ['class'],
    registers: [registry],
    collect() {
      fresh(); // the first metric registered: each scrape starts here
      this.reset();
      for (const [cls, n] of totals.detections) this.inc({ class: cls }, n);
    },
  });
  new Counter({
    name: 'swarm_actions_total',
    help: 'Action events by action type and outcome (proposed, granted, denied, started, verified, failed).',
    labelNames: ['type', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [k, n] of totals.actions) {
        const [type, outcome] = unkey(k);
        this.inc({ type: type ?? '', outcome: outcome ?? '' }, n);
      }
    },
  });
  new Counter({
    name: 'swarm_restarts_total',
    help: 'Workers launched again (attempt 2 and later), by job.',
    labelNames: ['job'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [job, n] of totals.restarts) this.inc({ job }, n);
    },
  });
  new Gauge({
    name: 'swarm_escalations_open',
    help: 'Escalations waiting for a person (swarmctl ack).',
    registers: [registry],
    collect() {
      this.set(snapshot().escalations.filter((e) => e.status === 'open').length);
    },
  });
  new Gauge({
    name: 'swarm_workers',
    help: 'Workers by status.',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const status of ['starting', 'running', 'stale', 'backoff', 'quarantined', 'stopped', 'completed', 'failed'])
        this.set({ status }, snapshot().workers.filter((w) => w.status === status).length);
    },
  });
  new Gauge({
    name: 'swarm_tasks',
    help: "The current run's tasks by state.",
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, n] of Object.entries(snapshot().tasks)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'swarm_lane_slots',
    help: "Each lane's slots, busy or free.",
    labelNames: ['lane', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of snapshot().lanes) {
        this.set({ lane: l.name, state: 'busy' }, l.busy);
        this.set({ lane: l.name, state: 'free' }, Math.max(0, l.slots - l.busy));
      }
    },
  });
  new Gauge({
    name: 'swarm_lane_utilization_ratio',
    help: "The use of each lane's resource, 0 to 1: machine CPU for a cpu lane, its GPUs' mean for a gpu lane.",
    labelNames: ['lane'],
    registers: [registry],
    collect() {
      this.reset();
      const s = snapshot();
      const gpus = gpuReadings(s);
      for (const lane of Object.values(src.config().lanes)) {
        const pct =
          lane.kind === 'cpu'
            ? s.utilization.cpuPct
            : lane.kind === 'gpu'
              ? mean(gpus.filter((g) => lane.gpus.includes(g.index)).map((g) => g.utilPct))
              : null;
        if (pct !== null) this.set({ lane: lane.name }, pct / 100);
      }
    },
  });
  new Gauge({
    name: 'swarm_gpu_utilization_ratio',
    help: "Each GPU's utilization, 0 to 1, as nvidia-smi last read it.",
    labelNames: ['gpu'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of gpuReadings(snapshot()))
        if (g.utilPct !== null) this.set({ gpu: String(g.index) }, g.utilPct / 100);
    },
  });
  new Gauge({
    name: 'swarm_gpu_memory_used_bytes',
    help: "Each GPU's memory in use, as nvidia-smi last read it.",
    labelNames: ['gpu'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of gpuReadings(snapshot()))
        if (g.memUsedMiB !== null) this.set({ gpu: String(g.index) }, g.memUsedMiB * 1048576);
    },
  });
  new Gauge({
    name: 'swarm_daemon_last_tick_age_seconds',
    help: "Seconds since each daemon's last tick; absent for a daemon that never ticked.",
    labelNames: ['daemon'],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of snapshot().daemons) if (d.tickAgeMs !== null) this.set({ daemon: d.name }, d.tickAgeMs / 1000);
    },
  });
  // prom-client formats any object with a name and get(); its types admit only its own classes.
  registry.registerMetric(
    daemonHistogram(
      src,
      'swarm_event_append_seconds',
      'Time to append to the event log, lock wait included, by the daemon that appended.',
      'appendSeconds',
    ) as unknown as Metric,
  );
  registry.registerMetric(
    daemonHistogram(
      src,
      'swarm_daemon_tick_seconds',
      "How long each daemon's ticks take.",
      'tickSeconds',
    ) as unknown as Metric,
  );
  new Counter({
    name: 'swarm_notifications_total',
    help: 'Webhook deliveries by endpoint and outcome: delivered (2xx), failed (an attempt), given_up (notify.failed).',
    labelNames: ['endpoint', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of new NotifyCursors(src.db).all()) {
        this.inc({ endpoint: c.endpoint, outcome: 'delivered' }, c.delivered);
        this.inc({ endpoint: c.endpoint, outcome: 'failed' }, c.failedAttempts);
        this.inc({ endpoint: c.endpoint, outcome: 'given_up' }, c.givenUp);
      }
    },
  });
  return registry;
}

/**
 * swarm_event_append_seconds and swarm_daemon_tick_seconds: each daemon's
 * own histograms (lib/timings.ts, in its state file), one series per
 * daemon. A prom-client Histogram can only observe; these are counted
 * elsewhere, so this is a metric object of our own that the registry formats.
 */
function daemonHistogram(src: MetricsSource, name: string, help: string, field: 'appendSeconds' | 'tickSeconds') {
  return {
    name,
    help,
    type: 'histogram',
    async get() {
      const values: { metricName: string; labels: Record<string, string>; value: number }[] = [];
      for (const daemon of DAEMON_NAMES) {
        const r = readStateFile(path.join(src.config().stateDir, DAEMON_STATE_FILES[daemon]), DaemonHistogramsSchema);
        const h = r.ok ? r.value[field] : null;
        if (!h) continue;
        h.le.forEach((le, i) =>
          values.push({ metricName: `${name}_bucket`, labels: { daemon, le: String(le) }, value: h.counts[i] ?? 0 }),
        );
        values.push({ metricName: `${name}_bucket`, labels: { daemon, le: '+Inf' }, value: h.count });
        values.push({ metricName: `${name}_sum`, labels: { daemon }, value: h.sumSeconds });
        values.push({ metricName: `${name}_count`, labels: { daemon }, value: h.count });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
}

interface GpuReading {
  index: number;
  utilPct: number | null;
  memUsedMiB: number | null;
}
const GpuReadingSchema = z.object({
  index: z.number(),
  utilPct: z.number().nullable(),
  memUsedMiB: z.number().nullable(),
});

function gpuReadings(s: Snapshot): GpuReading[] {
  return s.utilization.gpus.flatMap((g) => {
    const r = GpuReadingSchema.safeParse(g);
    return r.success ? [r.data] : [];
  });
}

function mean(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}
