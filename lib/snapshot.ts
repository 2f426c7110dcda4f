import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { systemClock } from './clock';
import type { CompiledConfig } from './config/config';
import { DB_FILE, openDb, type Db } from './db';
import { formatAge } from './duration';
import { errorMessage } from './errors';
import { DAEMON_NAMES, type DaemonName } from './event-kinds';
import { ecosystemDaemons } from './ecosystem';
import { isAlive, isStopped } from './proc';
import { publishedConfig } from './config/reload';
import { latestRun, isPaused } from './run-registry';
import { readStateFile } from './state-store';
import {
  DAEMON_STATE_FILES,
  DaemonHeaderSchema,
  EscalationSchema,
  type DaemonHeader,
  IncidentSchema,
  ScoresSchema,
  SESSION_LATEST_FILE,
  SessionLatestSchema,
  WorkerViewSchema,
  type Escalation,
  type Incident,
  type Scores,
  type WorkerView,
} from './state-files';
import { countTasks, type TaskStatus } from './task-queue';
import { resolvedEscalationIds } from './escalations';

// The whole picture `swarmctl query --json` prints, built from the state
// folder alone: daemon state files, the worker views the sentry wrote, and
// a few indexed reads of swarm.db. No PM2, so it works with every daemon down.

export const SCHEMA_VERSION = 1;

export type DaemonStatus = 'online' | 'stale' | 'stopped' | 'errored' | 'missing';

export interface DaemonView {
  name: DaemonName;
  status: DaemonStatus;
  pid: number | null;
  restarts: number;
  lastTickAt: string | null;
  tickAgeMs: number | null;
  /** The config version it runs (swarmctl reload): null from a daemon too old to say. */
  configVersion: string | null;
}

export interface Snapshot {
  schemaVersion: 1;
  generatedAt: string;
  swarm: string;
  run: { id: string; status: string; startedAt: string; paused: boolean; degraded: boolean } | null;
  daemons: DaemonView[];
  workers: WorkerView[];
  tasks: Record<TaskStatus, number>;
  lanes: { name: string; kind: string; slots: number; busy: number; starved: StarvedLaneView | null }[];
  utilization: { cpuPct: number | null; memPct: number | null; gpus: unknown[] };
  incidents: Incident[];
  escalations: Escalation[];
  nextSteps: string[];
  events: { lastSeq: number };
  /** The config version the swarm was last given (swarmctl reload, or the file watch); null before any. */
  config: { version: string | null; file: string };
  /** orchestrator-consensus's last scores (deviation, performance, efficiency), with when; null before its first. */
  scores: Scores | null;
  problems: string[];
}

/** A daemon that has not ticked for this many ticks is stale. */
export const STALE_AFTER_TICKS = 5;
const STALE_MIN_MS = 5000;

/**
 * Each daemon's header, by its file's identity. A daemon's whole state file
 * (the sentry's holds every worker) is parsed for these few fields, and the
 * watchdog and session-state-manager ask for them more than once a tick.
 * State files are replaced by rename, so a new write is a new inode; an edit
 * in place changes the size or the mtime.
 */
const headers = new Map<string, { key: string; header: DaemonHeader }>();

function readHeader(file: string): DaemonHeader | null {
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  const key = st?.isFile() ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : null;
  const hit = key === null ? undefined : headers.get(file);
  if (hit && hit.key === key) return hit.header;
  const r = readStateFile(file, DaemonHeaderSchema);
  if (!r.ok) {
    headers.delete(file);
    return null;
  }
  if (key !== null) headers.set(file, { key, header: r.value });
  return r.value;
}

export function daemonView(stateDir: string, name: DaemonName, now: number): DaemonView {
  const h = readHeader(path.join(stateDir, DAEMON_STATE_FILES[name]));
  if (!h)
    return { name, status: 'missing', pid: null, restarts: 0, lastTickAt: null, tickAgeMs: null, configVersion: null };
  const lastTick = h.lastTickAt ? Date.parse(h.lastTickAt) : Date.parse(h.startedAt);
  const tickAgeMs = Math.max(0, now - lastTick);
  let status: DaemonStatus;
  if (h.lifecycle === 'stopped') status = 'stopped';
  else if (h.lifecycle === 'errored') status = 'errored';
  else if (!isAlive(h.pid)) status = 'errored';
  else if (isStopped(h.pid) || tickAgeMs > Math.max(STALE_MIN_MS, STALE_AFTER_TICKS * h.tickMs)) status = 'stale';
  else status = 'online';
  const configVersion = typeof h.configVersion === 'string' ? h.configVersion : null;
  return {
    name,
    status,
    pid: status === 'stopped' || status === 'errored' ? null : h.pid,
    restarts: h.restarts,
    lastTickAt: h.lastTickAt,
    tickAgeMs,
    configVersion,
  };
}

const SentryViewSchema = z.looseObject({
  views: z.array(WorkerViewSchema).default([]),
  incidents: z.array(IncidentSchema).default([]),
});
const ConsensusViewSchema = z.looseObject({
  breaker: z.looseObject({ state: z.string(), escalationId: z.number().nullable() }).optional(),
  scores: ScoresSchema.nullable().catch(null).default(null),
});
const StarvedSchema = z.object({
  since: z.string(),
  usePct: z.number().nullable(),
  memPct: z.number(),
  targetPct: z.number(),
  queued: z.number(),
  freeSlots: z.number(),
  seq: z.number(),
});
export type StarvedLaneView = z.infer<typeof StarvedSchema>;
const UtilSchema = z.looseObject({
  utilization: z
    .looseObject({ cpuPct: z.number().nullable(), memPct: z.number().nullable(), gpus: z.array(z.unknown()) })
    .optional(),
  starved: z.record(z.string(), StarvedSchema).default({}),
});

const GatewayViewSchema = z.looseObject({
  notify: z
    .array(
      z.looseObject({
        name: z.string(),
        failures: z.number(),
        nextAt: z.number().nullable(),
        lastError: z.string().nullable(),
        givenUp: z.number(),
      }),
    )
    .catch([])
    .default([]),
  http: z
    .looseObject({
      kind: z.string(),
      host: z.string().optional(),
      port: z.number().optional(),
      error: z.string().optional(),
    })
    .nullable()
    .catch(null)
    .default(null),
});

/**
 * operator-gateway's problems: its HTTP server could not listen; a notify
 * endpoint is failing now, or its last event was given up (until one is
 * delivered).
 */
function gatewayProblems(stateDir: string, now: number): string[] {
  const g = readStateFile(path.join(stateDir, DAEMON_STATE_FILES['operator-gateway']), GatewayViewSchema);
  if (!g.ok) return [];
  const http = g.value.http;
  const out =
    http?.kind === 'failed'
      ? [
          `operator-gateway cannot listen on ${http.host}:${http.port} (${http.error}): no /metrics; it tries again every 10 s`,
        ]
      : [];
  return out.concat(
    g.value.notify.flatMap((n) => {
      if (n.failures > 0) {
        const next = n.nextAt === null ? '' : `, next try in ${formatAge(Math.max(0, n.nextAt - now))}`;
        return [
          `notify ${n.name} is failing: ${n.failures} failed attempt(s) at its next event${next} (${n.lastError})`,
        ];
      }
      if (n.givenUp > 0 && n.lastError !== null)
        return [
          `notify ${n.name} gave up on an event (notify.failed): ${n.lastError}; \`swarmctl notify test ${n.name}\` checks it`,
        ];
      return [];
    }),
  );
}

export function readEscalations(db: Db): Escalation[] {
  const raised = db
    .prepare<[], { seq: number; ts: string; target: string; data: string }>(
      "SELECT seq, ts, target, data FROM events WHERE kind = 'escalation.raised' ORDER BY seq DESC LIMIT 200",
    )
    .all();
  const resolved = resolvedEscalationIds(db);
  return raised.reverse().map((r) => {
    const d = JSON.parse(r.data) as { reason?: string };
    return EscalationSchema.parse({
      id: r.seq,
      target: r.target,
      reason: d.reason ?? '',
      raisedAt: r.ts,
      status: resolved.has(r.seq) ? 'resolved' : 'open',
    });
  });
}

export function buildSnapshot(config: CompiledConfig, now = systemClock.now()): Snapshot {
  const stateDir = config.stateDir;
  const running = ecosystemDaemons();
  // Daemons this build runs are always listed; any other only once it has left a state file.
  const daemons = DAEMON_NAMES.map((n) => daemonView(stateDir, n, now)).filter(
    (d) => d.status !== 'missing' || running.includes(d.name),
  );
  const sentry = readStateFile(path.join(stateDir, DAEMON_STATE_FILES['worker-sentry']), SentryViewSchema);
  const workers = sentry.ok ? sentry.value.views : [];
  const util = readStateFile(path.join(stateDir, DAEMON_STATE_FILES['util-controller']), UtilSchema);
  const incidents: Incident[] = sentry.ok ? sentry.value.incidents : [];
  const consensus = readStateFile(
    path.join(stateDir, DAEMON_STATE_FILES['orchestrator-consensus']),
    ConsensusViewSchema,
  );
  const breaker = consensus.ok ? (consensus.value.breaker ?? null) : null;
  const degraded = breaker !== null && breaker.state !== 'closed';
  const snap: Snapshot = {
    schemaVersion: SCHEMA_VERSION,
    generatedAt: new Date(now).toISOString(),
    swarm: config.name,
    run: null,
    daemons,
    workers,
    tasks: { queued: 0, running: 0, completed: 0, failed: 0, quarantined: 0 },
    lanes: Object.values(config.lanes).map((l) => ({
      name: l.name,
      kind: l.kind,
      slots: l.slots,
      busy: workers.filter((w) => w.lane === l.name && ['starting', 'running', 'stale', 'backoff'].includes(w.status))
        .length,
      // Only while util-controller runs: a stopped controller's last word on starvation is no longer true.
      starved:
        util.ok && daemons.find((d) => d.name === 'util-controller')?.status === 'online'
          ? (util.value.starved[l.name] ?? null)
          : null,
    })),
    utilization: util.ok && util.value.utilization ? util.value.utilization : { cpuPct: null, memPct: null, gpus: [] },
    incidents: incidents.sort((a, b) => a.id - b.id).slice(-50),
    escalations: [],
    nextSteps: [],
    events: { lastSeq: 0 },
    config: { version: null, file: config.file },
    scores: consensus.ok ? consensus.value.scores : null,
    problems: [],
  };
  if (fs.existsSync(path.join(stateDir, DB_FILE))) {
    try {
      readFromLog(snap, stateDir, degraded);
    } catch (err) {
      // A corrupt swarm.db, a read-only folder, a full disk: the rest of the snapshot still stands,
      // the run from the session file, and the problem is named.
      snap.problems.push(
        `cannot read the event log ${path.join(stateDir, DB_FILE)}: ${errorMessage(err)}; run, tasks and escalations below are from the state files`,
      );
      const latest = readStateFile(path.join(stateDir, SESSION_LATEST_FILE), SessionLatestSchema);
      if (latest.ok) {
        const v = latest.value as { runId: string; status: string; startedAt?: unknown; tasks?: unknown };
        snap.run = {
          id: v.runId,
          status: v.status,
          startedAt: typeof v.startedAt === 'string' ? v.startedAt : '',
          paused: false,
          degraded,
        };
        const tasks = z
          .object({
            queued: z.number(),
            running: z.number(),
            completed: z.number(),
            failed: z.number(),
            quarantined: z.number(),
          })
          .safeParse(v.tasks);
        if (tasks.success) snap.tasks = tasks.data;
      }
    }
  } else {
    snap.problems.push(`no event log at ${path.join(stateDir, DB_FILE)}: the swarm has not run here yet`);
  }
  if (breaker && degraded) {
    snap.problems.push(
      `the swarm is DEGRADED: circuit breaker ${breaker.state}; automatic actions other than safety are held (swarmctl ack ${breaker.escalationId})`,
    );
  }
  snap.problems.push(...describeProblems(snap, config), ...gatewayProblems(stateDir, now));
  snap.nextSteps = nextSteps(snap, config);
  return snap;
}

function readFromLog(snap: Snapshot, stateDir: string, degraded: boolean): void {
  const db = openDb(stateDir, { readonly: true });
  try {
    const run = latestRun(db);
    if (run) {
      snap.run = { id: run.id, status: run.status, startedAt: run.startedAt, paused: isPaused(db), degraded };
      snap.tasks = countTasks(db, run.id);
    }
    snap.escalations = readEscalations(db);
    snap.events.lastSeq = db.prepare<[], { m: number | null }>('SELECT max(seq) AS m FROM events').get()?.m ?? 0;
    snap.config.version = publishedConfig(db)?.version ?? null;
  } finally {
    db.close();
  }
}

const heldBy = (v: StarvedLaneView, memoryCeiling: number): string =>
  v.memPct > memoryCeiling
    ? `memory ${v.memPct}% over the ceiling ${memoryCeiling}%`
    : `use ${Math.round(v.usePct ?? 0)}% against target ${v.targetPct}%`;

function describeProblems(s: Snapshot, config: CompiledConfig): string[] {
  const out: string[] = [];
  if (s.run?.paused) out.push('the swarm is PAUSED: only safety actions run (swarmctl resume)');
  for (const d of s.daemons) if (d.status !== 'online') out.push(`daemon ${d.name} is ${d.status}`);
  for (const d of s.daemons) {
    if (d.status === 'online' && s.config.version && d.configVersion && d.configVersion !== s.config.version) {
      out.push(
        `daemon ${d.name} runs config ${d.configVersion}, not ${s.config.version}: the reload has not reached it yet`,
      );
    }
  }
  for (const e of s.escalations) if (e.status === 'open') out.push(`escalation ${e.id} on ${e.target}: ${e.reason}`);
  for (const w of s.workers)
    if (w.status === 'stale' || w.status === 'quarantined' || w.status === 'backoff')
      out.push(`worker ${w.id} is ${w.status}`);
  for (const l of s.lanes) {
    if (l.starved)
      out.push(
        `lane ${l.name} is starved: ${l.starved.queued} task(s) queued, ${l.starved.freeSlots} slot(s) free, held back by ${heldBy(l.starved, config.utilization.memoryCeiling)} since ${l.starved.since}`,
      );
  }
  return out;
}

export function nextSteps(s: Snapshot, config: CompiledConfig): string[] {
  const out: string[] = [];
  const down = s.daemons.filter((d) => d.status !== 'online');
  if (down.length === s.daemons.length)
    out.push('No daemon is running. Start the swarm with `npm start` (or `scripts/swarmctl up`).');
  else
    for (const d of down)
      out.push(
        `Daemon ${d.name} is ${d.status}. Check \`pm2 logs ${d.name}\`, then run \`scripts/swarmctl up\` to bring it back.`,
      );
  for (const e of s.escalations.filter((x) => x.status === 'open')) {
    const wid = e.target.replace(/^worker:/, '');
    out.push(
      `${e.target} needs a person: ${e.reason}. Read ${path.join(config.stateDir, 'workers', wid, 'output.log')}, fix the cause, then run \`scripts/swarmctl ack ${e.id}\` to let it run again.`,
    );
  }
  for (const l of s.lanes) {
    if (!l.starved) continue;
    const target = l.kind === 'gpu' ? 'gpuTarget' : 'cpuTarget';
    const fix =
      l.starved.memPct > config.utilization.memoryCeiling
        ? `free memory on the machine, or raise utilization.memoryCeiling (now ${config.utilization.memoryCeiling}%) in ${config.file}`
        : `lower the machine's other load, raise utilization.${target} (now ${l.starved.targetPct}%) in ${config.file}, or set lanes.${l.name}.fill to "slots" to fill it whatever the use`;
    out.push(
      `Lane ${l.name} is held back by ${heldBy(l.starved, config.utilization.memoryCeiling)} with ${l.starved.queued} task(s) waiting: ${fix}.`,
    );
  }
  if (s.run?.paused) out.push('The swarm is paused. Run `scripts/swarmctl resume` when maintenance is over.');
  const t = s.tasks;
  if (s.run?.status === 'completed')
    out.push(
      `The run is complete: ${t.completed} task(s) completed, ${t.failed} failed. Results are in ${path.join(config.stateDir, 'checkpoints')}.`,
    );
  else if (t.queued > 0 && s.lanes.every((l) => l.busy >= l.slots))
    out.push(`${t.queued} task(s) wait for a free slot; add slots to a lane in ${config.file} to run more at once.`);
  if (out.length === 0)
    out.push(
      'Nothing needs you now. Follow progress with `tail -f ' +
        path.join(config.stateDir, 'workflow_events.log') +
        '`.',
    );
  return out;
}
