import { Action, actorDeps, type ActionDeps, type Grantor } from '../actions/action';
import type { DaemonBehavior, DaemonContext } from '../daemon-runtime';
import { errorMessage } from '../errors';
import { CpuLoadMeter, memoryUsedPct } from '../machine-load';
import { probeGpus, type GpuProbe } from '../nvidia-smi';
import { requestCommand, requestLaneFill } from '../worker/requests';
import { SentryBodySchema, type WorkerRecord } from '../worker/record';
import { ACTIVE_STATUSES, LIVE_STATUSES } from '../worker/lifecycle';
import { DAEMON_STATE_FILES } from '../state-files';
import { queuedTasks } from '../task-queue';
import { checkGpuBinding } from './gpu-checks';
import { decideLane, type LaneDecision, type LaneMemory, type Sample } from './lane-policy';
import { pruneSamples, recordSamples } from './samples';
import { StarvationWatch } from './starvation';
import { raiseEscalation } from '../escalations';

// util-controller: owns CPU, memory and GPU use against the targets. Each
// tick it samples the machine (/proc) and the GPUs (nvidia-smi),
// keeps the samples, fills lanes whose resource sits below target with
// queued work, stops the newest fill worker when memory stays over the
// ceiling (its task goes back to the queue with its checkpoint), and checks
// that GPU work is on its GPU and CPU work is not.

const PRUNE_EVERY_MS = 60_000;
const NOT_INSTALLED_REPROBE_MS = 60_000;

function laneBusy(ctx: DaemonContext, lane: string, now: number): boolean {
  return (
    ctx.db
      .prepare<[string, number], { n: number }>('SELECT count(*) AS n FROM leases WHERE target = ? AND expires_at > ?')
      .get(`lane:${lane}`, now)?.n !== 0
  );
}

export class UtilController implements DaemonBehavior {
  private readonly samples = new Map<string, Sample[]>();
  private lastDownAt: number | null = null;
  private readonly grown = new Map<string, LaneMemory['grown']>();
  private readonly starvation = new StarvationWatch();
  private readonly decisions: Record<string, LaneDecision> = {};
  private readonly flagged = new Set<string>();
  private gpu: GpuProbe = { available: false, gpus: [], reason: 'not probed yet' };
  private readonly cpu = new CpuLoadMeter();
  private gpuProbedAt = -Infinity;
  private machine: { cpuPct: number | null; memPct: number | null } = { cpuPct: null, memPct: null };
  private lastPruneAt = 0;
  private readonly actionDeps: (ctx: DaemonContext) => ActionDeps;

  constructor(makeGrantor: (ctx: DaemonContext) => Grantor) {
    this.actionDeps = actorDeps('util-controller', makeGrantor);
  }

  async tick(ctx: DaemonContext): Promise<void> {
    const now = ctx.clock.now();
    const u = ctx.config.utilization;
    // A machine without nvidia-smi is asked again once a minute, not every
    // tick: a driver installed later is still found.
    const skipProbe =
      !this.gpu.available && this.gpu.notInstalled === true && now - this.gpuProbedAt < NOT_INSTALLED_REPROBE_MS;
    if (!skipProbe) {
      this.gpu = await probeGpus({ timeoutMs: Math.min(5000, Math.max(1000, 2 * ctx.config.tickMs)) });
      this.gpuProbedAt = now;
    }
    const gpu = this.gpu;
    const memPct = memoryUsedPct();
    this.machine = { cpuPct: this.cpu.sample(), memPct };
    const workers = this.workers(ctx);
    const values: Record<string, number | null> = { cpu: this.machine.cpuPct, mem: memPct };
    for (const g of gpu.gpus) {
      values[`gpu:${g.index}:util`] = g.utilPct;
      values[`gpu:${g.index}:mem`] = g.memUsedMiB;
    }
    const keepMs = Math.max(u.windowMs, u.scaleDownStabilizationMs, u.scaleUpPeriodMs) + 2 * ctx.config.tickMs;
    for (const lane of Object.values(ctx.config.lanes)) {
      const utilPct = lane.kind === 'cpu' ? this.machine.cpuPct : lane.kind === 'gpu' ? this.gpuUtil(lane.gpus) : null;
      const busy = workers.filter((w) => w.lane === lane.name && ACTIVE_STATUSES.includes(w.status)).length;
      const list = [...(this.samples.get(lane.name) ?? []), { at: now, utilPct, memPct, busy }].filter(
        (s) => s.at >= now - keepMs,
      );
      this.samples.set(lane.name, list);
      values[`lane:${lane.name}:busy`] = busy;
    }
    recordSamples(ctx.db, now, values);
    if (now - this.lastPruneAt >= PRUNE_EVERY_MS) {
      this.lastPruneAt = now;
      pruneSamples(ctx.db, now - u.retentionMs);
    }
    await this.balance(ctx, workers, now);
    if (gpu.available) await this.checkGpus(ctx, workers, now);
  }

  private gpuUtil(indexes: number[]): number | null {
    if (!this.gpu.available) return null;
    const vals = this.gpu.gpus
      .filter((g) => indexes.includes(g.index))
      .map((g) => g.utilPct)
      .filter((v): v is number => v !== null);
    return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
  }

  private workers(ctx: DaemonContext): WorkerRecord[] {
    const r = ctx.state.read(DAEMON_STATE_FILES['worker-sentry'], SentryBodySchema);
    return r.ok ? r.value.workers : [];
  }

  private async balance(ctx: DaemonContext, workers: WorkerRecord[], now: number): Promise<void> {
    const u = ctx.config.utilization;
    let scaledDown = false;
    for (const lane of Object.values(ctx.config.lanes)) {
      const mine = workers.filter((w) => w.lane === lane.name);
      const fill = mine.filter((w) => w.taskId !== null && LIVE_STATUSES.includes(w.status));
      const grown = (this.grown.get(lane.name) ?? []).filter((g) => g.at > now - u.scaleUpPeriodMs);
      this.grown.set(lane.name, grown);
      const queued = queuedTasks(ctx.db, ctx.run.id, lane.name, lane.slots).length;
      const busy = mine.filter((w) => ACTIVE_STATUSES.includes(w.status)).length;
      const d = decideLane(
        {
          mode: lane.fill,
          targetPct: lane.kind === 'gpu' ? u.gpuTarget : u.cpuTarget,
          windowMs: u.windowMs,
          memoryCeilingPct: u.memoryCeiling,
          stabilizationMs: u.scaleDownStabilizationMs,
          scaleUpPeriodMs: u.scaleUpPeriodMs,
          scaleUpPods: u.scaleUpPods,
        },
        { lastDownAt: this.lastDownAt, grown },
        this.samples.get(lane.name) ?? [],
        { slots: lane.slots, busy, queued, fillWorkers: fill.length },
        now,
      );
      this.decisions[lane.name] = d;
      this.starvation.observe(
        ctx,
        lane.name,
        d.heldByUse ? { ...d.heldByUse, queued, freeSlots: lane.slots - busy } : null,
        now,
      );
      // One growth of a lane at a time: the last one holds the lane's lease until its first worker runs.
      if (d.kind === 'fill' && !laneBusy(ctx, lane.name, now)) {
        // Idle capacity with work waiting is the failure this fills; a lane filled by slots just has room.
        const low =
          lane.fill === 'utilization'
            ? ctx.log.append({
                kind: 'detect.util_low',
                target: `lane:${lane.name}`,
                severity: 'info',
                data: { class: 'util_low', queued, message: d.reason },
              }).seq
            : null;
        const a = await Action.propose(this.actionDeps(ctx), {
          type: 'launch_worker',
          target: `lane:${lane.name}`,
          priority: 'capacity',
          reason: d.reason,
          incidentId: low,
          data: { count: d.count },
        });
        if (a.granted) {
          requestLaneFill(ctx.db, lane.name, d.count, a.id);
          grown.push({ at: now, count: d.count });
        }
      } else if (d.kind === 'scale-down' && !scaledDown) {
        // Memory is the machine's, not the lane's: the newest fill worker of any lane goes first.
        const newest = workers
          .filter((w) => w.taskId !== null && LIVE_STATUSES.includes(w.status))
          .sort((a, b) => (b.launchedAt ?? 0) - (a.launchedAt ?? 0))[0];
        if (!newest) continue;
        const detect = ctx.log.append({
          kind: 'detect.memory_pressure',
          target: `lane:${lane.name}`,
          severity: 'warn',
          data: {
            class: 'memory_pressure',
            memPct: this.machine.memPct,
            ceiling: u.memoryCeiling,
            victim: newest.id,
            message: d.reason,
          },
        });
        // Memory pressure is a safety matter: it goes ahead in pause mode and with the breaker open.
        const a = await Action.propose(this.actionDeps(ctx), {
          type: 'requeue_task',
          target: `worker:${newest.id}`,
          priority: 'safety',
          reason: `${d.reason}: stop the newest fill worker`,
          incidentId: detect.seq,
        });
        if (a.granted) {
          requestCommand(ctx.db, newest.id, 'requeue', a.id, 'util-controller');
          this.lastDownAt = now;
          scaledDown = true;
        }
      }
    }
  }

  private async checkGpus(ctx: DaemonContext, workers: WorkerRecord[], now: number): Promise<void> {
    for (const w of workers) {
      const lane = ctx.config.lanes[w.lane];
      // A slurm worker's processes are on a compute node, out of this machine's nvidia-smi.
      if (!lane || lane.kind === 'slurm' || !LIVE_STATUSES.includes(w.status)) continue;
      const key = `${w.id}:${w.attempt}`;
      if (this.flagged.has(key)) continue;
      let f;
      try {
        f = checkGpuBinding(w, lane.kind, this.gpu.gpus, now, ctx.config.utilization.gpuGraceMs);
      } catch (err) {
        ctx.logger.warn({ worker: w.id, err: errorMessage(err) }, 'gpu check failed');
        continue;
      }
      if (!f) continue;
      this.flagged.add(key);
      const d = ctx.log.append({
        kind: `detect.${f.class}`,
        target: `worker:${w.id}`,
        severity: 'error',
        data: { class: f.class, attempt: w.attempt, ...f.evidence, message: f.message },
      });
      // Restarting cannot put work on the right device: a person decides.
      raiseEscalation(ctx.log, {
        target: `worker:${w.id}`,
        reason: f.message,
        incidentId: d.seq,
        data: { workerId: w.id },
      });
    }
  }

  snapshot(): Record<string, unknown> {
    return {
      utilization: {
        cpuPct: this.machine.cpuPct,
        memPct: this.machine.memPct,
        gpus: this.gpu.gpus.map((g) => ({
          index: g.index,
          name: g.name,
          utilPct: g.utilPct,
          memUsedMiB: g.memUsedMiB,
          memTotalMiB: g.memTotalMiB,
          temperatureC: g.temperatureC,
          pids: g.processes.map((p) => p.pid),
        })),
      },
      gpuProbe: this.gpu.available ? { available: true } : { available: false, reason: this.gpu.reason },
      lanes: this.decisions,
      starved: this.starvation.view(),
    };
  }
}
