import path from 'node:path';
import { z } from 'zod';
import { Action } from '../actions/action';
import { iso } from '../clock';
import type { CompiledJob } from '../config/config';
import type { DaemonContext } from '../daemon-runtime';
import { errorMessage } from '../errors';
import { isPaused } from '../run-registry';
import { daemonView } from '../snapshot';
import { DAEMON_STATE_FILES } from '../state-files';
import { readStateFile } from '../state-store';
import { getTask, queuedTasks, setTaskStatus } from '../task-queue';
import { replicaWorkerId, taskWorkerId } from '../worker-ids';
import { badRequest, pendingLaneFills, type LaneFill } from '../worker/requests';
import { failDoomedDependents } from './dependencies';
import { launchWorker, type WorkerStarters } from './launcher';
import { fileSize } from '../worker/read';
import { newTracker } from './plateau';
import type { SentryHost } from './sentry-host';
import { workerDirOf } from '../worker/files';
import { dueAt, hasProcess, IDLE, newSlurmJob, newWorkerRecord, type WorkerRecord } from '../worker/record';
import { ACTIVE_STATUSES } from '../worker/lifecycle';
import { cpuSeconds, timedCalls, Timings } from '../timings';

// worker-sentry's launching: relaunches workers whose backoff is over, keeps
// replicas up, and starts queued tasks on free lane slots, on
// util-controller's fill permits while it is there.

/**
 * Launches stop for the tick once it has spent this long on them (at least a
 * tick, at most a third of the watchdog's staleness limit), and the rest
 * start on the next tick. Each launch is a PM2 start, slower the more apps
 * PM2 holds: a tick that started 100 workers in a row ran past the
 * watchdog's limit and had the sentry restarted mid-launch.
 */
const MIN_LAUNCH_BUDGET_MS = 1000;

/** Why a queued task started, recorded in task.started's `why`. */
type StartReason = 'refill' | 'fill' | 'slots' | 'forced';
const START_REASONS: Record<StartReason, string> = {
  refill: 'refilling a slot freed by a task that ended',
  fill: "on util-controller's fill",
  slots: 'util-controller is down: filling free slots',
  forced: 'launched past the utilization gate: the run sat still (no_workers or run_stalled)',
};

const RefillGatesSchema = z.looseObject({
  lanes: z.record(z.string(), z.looseObject({ refill: z.boolean().optional() })).default({}),
});

/** util-controller's refill gate per lane, from its last tick: open while the lane's use is below target. */
function refillGates(stateDir: string): Record<string, boolean> {
  const r = readStateFile(path.join(stateDir, DAEMON_STATE_FILES['util-controller']), RefillGatesSchema);
  return r.ok ? Object.fromEntries(Object.entries(r.value.lanes).map(([lane, d]) => [lane, d.refill === true])) : {};
}

export class LaneFiller {
  private utilDownSince: number | null = null;
  private launchesEndAt = Infinity;
  /**
   * Launches a granted fill permit still owes its lane because the tick ran
   * out of time. They start on the next ticks under the same action: waiting
   * for a fresh permit instead would put each of them behind the last fill's
   * verification, and on a loaded machine a queue of ten took minutes.
   */
  private readonly permitOwed = new Map<string, number>();
  private readonly freed = new Map<string, number[]>();
  /** Task workers holding a slot at the last tick, by lane. */
  private activeTasks = new Map<string, string>();

  /** The starters, with the time spent in them counted (startingSeconds), so it can be told from Swarm's own. */
  private readonly timedStarters: WorkerStarters;

  constructor(
    private readonly host: SentryHost,
    starters: WorkerStarters,
  ) {
    const add = (s: number) => (this.startingSeconds += s);
    this.timedStarters = {
      pm: timedCalls(starters.pm, add, cpuSeconds),
      slurm: timedCalls(starters.slurm, add, cpuSeconds),
    };
  }

  private outOfTime(ctx: DaemonContext): boolean {
    return ctx.clock.now() >= this.launchesEndAt;
  }

  async fill(ctx: DaemonContext, now: number): Promise<void> {
    const budgetMs = Math.min(Math.max(MIN_LAUNCH_BUDGET_MS, ctx.config.tickMs), ctx.config.watchdog.staleAfterMs / 3);
    this.launchesEndAt = ctx.clock.now() + budgetMs;
    // Relaunch workers whose backoff is over.
    for (const w of this.host.workers.values()) {
      if (this.outOfTime(ctx)) return;
      const due = dueAt(w);
      if (w.status !== 'backoff' || due === null || due > now || w.pid !== null || hasProcess(w)) continue;
      const job = ctx.config.jobs[w.job];
      if (job?.retired) {
        // Its job was removed by a reload: it finished what it could; nothing of it starts again.
        this.host.move(ctx, w, 'stopped', `job ${w.job} removed by a reload`);
        if (w.taskId) setTaskStatus(ctx.db, ctx.run.id, w.taskId, 'failed', iso(now));
        continue;
      }
      if (w.inFlight.kind === 'awaiting-grant' && job) await this.host.act(ctx, w, job, w.inFlight.failure, now);
      else await this.launch(ctx, w, now);
    }
    for (const [name, job] of Object.entries(ctx.config.jobs)) {
      for (let slot = 0; slot < (job.retired ? 0 : job.replicas); slot++) {
        const id = replicaWorkerId(name, slot);
        if (this.outOfTime(ctx)) return;
        if (!this.host.workers.has(id) && this.freeSlots(ctx, job.lane) > 0) {
          const w = newWorkerRecord({ id, job: name, taskId: null, slot, lane: job.lane });
          this.host.workers.set(id, w);
          await this.launch(ctx, w, now);
        }
      }
    }
    // With util-controller there, queued work starts only on its fill permits and, for slots freed by
    // ended tasks, under its refill gate. Only when it has been gone for a while (not merely starting or
    // restarting) do free slots fill at once.
    const util = daemonView(ctx.config.stateDir, 'util-controller', now);
    this.utilDownSince = util.status === 'online' ? null : (this.utilDownSince ?? now);
    const governed = this.utilDownSince === null || now - this.utilDownSince < ctx.config.watchdog.staleAfterMs * 2;
    const freed = this.noteFreedSlots(ctx, now);
    failDoomedDependents(ctx);
    if (isPaused(ctx.db)) return;
    const gates = governed && util.status === 'online' ? refillGates(ctx.config.stateDir) : {};
    // A forced launch (session-state-manager's, past the gate) is taken whether or not util-controller governs.
    const permits = pendingLaneFills(ctx.db, badRequest(ctx)).filter((p) => governed || p.holder !== 'util-controller');
    for (const lane of Object.keys(ctx.config.lanes)) {
      // Out of time: an unused permit waits for the next tick.
      if (this.outOfTime(ctx)) return;
      // A slot freed by a task that ended is refilled in this same tick while the gate is open: replacing
      // what ran is the ReplicaSet's job, not a new decision to grow.
      const owedRefills = gates[lane] === true ? Math.min(freed.get(lane)?.length ?? 0, this.freeSlots(ctx, lane)) : 0;
      if (owedRefills > 0)
        freed.get(lane)?.splice(0, (await this.startQueued(ctx, lane, owedRefills, now, 'refill')).length);
      // A forced launch first, so the run's own remedy is the one its first worker verifies.
      const lanePermits = permits
        .filter((p) => p.lane === lane)
        .sort((a, b) => Number(a.holder === 'util-controller') - Number(b.holder === 'util-controller'));
      for (const p of lanePermits) p.done();
      const forced = lanePermits.some((p) => p.holder !== 'util-controller');
      const owed = governed
        ? (this.permitOwed.get(lane) ?? 0) + lanePermits.reduce((n, p) => n + p.count, 0)
        : Infinity;
      const allowed = Math.min(this.freeSlots(ctx, lane), owed);
      const started =
        allowed > 0
          ? await this.startQueued(ctx, lane, allowed, now, forced ? 'forced' : governed ? 'fill' : 'slots')
          : [];
      // Only a launch cut short by the clock is owed; slots that filled up or a queue that emptied end the permit.
      const cutShort = governed && started.length < allowed && this.outOfTime(ctx);
      if (cutShort) this.permitOwed.set(lane, allowed - started.length);
      else this.permitOwed.delete(lane);
      let rest = started;
      for (const p of lanePermits) {
        this.tieFillAction(ctx, p, rest.slice(0, p.count));
        rest = rest.slice(p.count);
      }
    }
  }

  /**
   * Slots freed since the last tick by task workers that ended (completed,
   * failed, stopped, requeued), per lane, each kept for one scale-up period:
   * after that, filling the slot again is growth, util-controller's call.
   */
  private noteFreedSlots(ctx: DaemonContext, now: number): Map<string, number[]> {
    const active = new Map<string, string>();
    for (const w of this.host.workers.values())
      if (w.taskId !== null && ACTIVE_STATUSES.includes(w.status)) active.set(w.id, w.lane);
    for (const [id, lane] of this.activeTasks) {
      if (!active.has(id)) this.freed.set(lane, [...(this.freed.get(lane) ?? []), now]);
    }
    this.activeTasks = active;
    for (const [lane, times] of this.freed)
      this.freed.set(
        lane,
        times.filter((t) => now - t < ctx.config.utilization.scaleUpPeriodMs),
      );
    return this.freed;
  }

  /**
   * Swarm's own CPU time per queued task started: the queue read, the
   * record, the events, and the worker's files, all but the process
   * manager's start itself (the call on PM2's socket, or sbatch). CPU time, not
   * wall time: on a machine busy with the work itself the wall clock would
   * measure the work. In the sentry's state file as launchDecisionSeconds,
   * for the 1,000-task drain in `npm run bench -- --full`.
   */
  readonly decisionTimings = new Timings();
  /** Seconds spent waiting on the process manager in this process's launches. */
  private startingSeconds = 0;

  /** Starts up to `count` queued tasks of a lane, in queue order. */
  private async startQueued(
    ctx: DaemonContext,
    lane: string,
    count: number,
    now: number,
    why: StartReason,
  ): Promise<WorkerRecord[]> {
    const began = cpuSeconds();
    const startingBefore = this.startingSeconds;
    const held = [...this.host.workers.values()].filter(
      (w) => w.lane === lane && w.status === 'stopped' && w.taskId !== null,
    ).length;
    const out: WorkerRecord[] = [];
    for (const t of queuedTasks(ctx.db, ctx.run.id, lane, count + held)) {
      const id = taskWorkerId(t.job, t.id);
      const prev = this.host.workers.get(id);
      const job = ctx.config.jobs[t.job];
      if (!job || job.retired || prev?.status === 'stopped' || out.length >= count) continue;
      if (out.length > 0 && this.outOfTime(ctx)) break;
      const requeued = this.host.requeuedCounts[t.id];
      const w = newWorkerRecord({
        id,
        job: t.job,
        taskId: t.id,
        slot: null,
        lane,
        attempt: prev?.attempt ?? requeued?.attempt ?? 0,
      });
      Object.assign(w, { restarts: prev?.restarts ?? requeued?.restarts ?? 0 });
      if (prev) w.history = prev.history;
      delete this.host.requeuedCounts[t.id];
      this.host.workers.set(id, w);
      setTaskStatus(ctx.db, ctx.run.id, t.id, 'running', iso(now), true);
      ctx.log.append({
        kind: 'task.started',
        target: `task:${t.id}`,
        data: {
          workerId: id,
          job: t.job,
          lane,
          why,
          message: `task ${t.id} started on lane ${lane} (${START_REASONS[why]})`,
        },
      });
      await this.launch(ctx, w, now);
      out.push(w);
    }
    if (out.length > 0) {
      const own = (cpuSeconds() - began - (this.startingSeconds - startingBefore)) / out.length;
      for (let i = 0; i < out.length; i++) this.decisionTimings.observe(Math.max(0, own));
    }
    return out;
  }

  /**
   * A fill action whose verification was lost with a previous sentry (it
   * ended between launching and writing its state) would hold its lane's
   * lease, and so stop every fill, until the lease expired. Called once at
   * start, after adoption: such an action is verified if workers run on its
   * lane, failed if none do, and either way its lease is freed.
   */
  settleOrphanedFills(ctx: DaemonContext): void {
    const tied = new Set([...this.host.workers.values()].flatMap((w) => (w.pending ? [w.pending.id] : [])));
    // A permit not yet taken is not lost: fill() takes it and ties it to what it starts.
    for (const p of pendingLaneFills(ctx.db, badRequest(ctx))) tied.add(p.actionId);
    const leases = ctx.db
      .prepare<[number], { target: string; action_id: number }>(
        "SELECT target, action_id FROM leases WHERE holder = 'util-controller' AND target LIKE 'lane:%' AND action_id IS NOT NULL AND expires_at > ?",
      )
      .all(ctx.clock.now());
    const steps = ctx.db.prepare<[number], { kind: string }>(
      "SELECT kind FROM events WHERE action_id = ? AND kind IN ('action.started', 'action.verified', 'action.failed')",
    );
    for (const l of leases) {
      if (tied.has(l.action_id)) continue;
      const kinds = steps.all(l.action_id).map((r) => r.kind);
      if (kinds.includes('action.verified') || kinds.includes('action.failed')) continue;
      const lane = l.target.slice('lane:'.length);
      const deps = { ...this.host.actionDeps(ctx), actor: 'util-controller' as const };
      const started = kinds.includes('action.started');
      const action = Action.resume(deps, {
        id: l.action_id,
        type: 'launch_worker',
        target: `lane:${lane}`,
        incidentId: null,
        state: started ? 'started' : 'granted',
        proposedAt: ctx.clock.now(),
        startedAt: null,
      });
      const running = [...this.host.workers.values()].filter(
        (w) => w.lane === lane && ACTIVE_STATUSES.includes(w.status),
      ).length;
      if (started && running > 0)
        action.verified({ message: `settled after a sentry restart: ${running} worker(s) running on lane ${lane}` });
      else
        action.failed({
          message: `lost with a sentry restart before its workers were recorded; lane ${lane} is free to fill again`,
        });
    }
  }

  /** A granted launch_worker action (util-controller's fill, or a forced launch): started here, verified once the first new worker runs healthy. */
  private tieFillAction(ctx: DaemonContext, permit: LaneFill, started: WorkerRecord[]): void {
    const { actionId, lane, holder } = permit;
    const deps = { ...this.host.actionDeps(ctx), actor: holder };
    const action = Action.resume(deps, {
      id: actionId,
      type: 'launch_worker',
      target: `lane:${lane}`,
      incidentId: null,
      state: 'granted',
      proposedAt: ctx.clock.now(),
      startedAt: null,
    });
    action.started({ workerIds: started.map((w) => w.id) });
    const first = started[0];
    if (!first) return action.verified({ message: `nothing to start on lane ${lane} any more` });
    first.pending = {
      id: actionId,
      type: 'launch_worker',
      incidentId: null,
      leaseHolder: holder,
      startedAt: ctx.clock.now(),
      verifyAttempt: first.attempt,
      intent: 'launch',
      target: `lane:${lane}`,
    };
  }

  private freeSlots(ctx: DaemonContext, lane: string): number {
    const slots = ctx.config.lanes[lane]?.slots ?? 0;
    let busy = 0;
    for (const w of this.host.workers.values()) if (w.lane === lane && ACTIVE_STATUSES.includes(w.status)) busy += 1;
    return slots - busy;
  }

  async launch(ctx: DaemonContext, w: WorkerRecord, now: number): Promise<void> {
    const job = ctx.config.jobs[w.job];
    if (!job) return;
    const relaunch = w.attempt > 0;
    this.host.setInFlight(ctx, w, IDLE);
    Object.assign(w, {
      attempt: w.attempt + 1,
      restarts: relaunch ? w.restarts + 1 : w.restarts,
      pid: null,
      pgid: null,
      shimPid: null,
      identity: null,
      launchedAt: now,
      progressAdvancedSinceLaunch: false,
      startupSeen: false,
      startupSeenAt: null,
      logOffset: fileSize(path.join(workerDirOf(ctx.config, w), 'output.log')) ?? 0,
      logChangedAt: null,
      artifactsSeen: job.artifacts.map(() => false),
      detectedThisAttempt: [],
      memBytes: null,
      cpuPct: null,
      lastProgressAt: null,
      gpus: this.pickGpus(ctx, w),
      plateau: newTracker(),
      progressStart: null,
      progressWarned: false,
    });
    const extraArgs = w.taskId ? (getTask(ctx.db, ctx.run.id, w.taskId)?.args ?? []) : [];
    this.host.move(ctx, w, 'starting', relaunch ? `relaunch attempt ${w.attempt}` : 'launch');
    if (w.taskId && relaunch) setTaskStatus(ctx.db, ctx.run.id, w.taskId, 'running', iso(now));
    try {
      const { spec, jobId } = await launchWorker(this.timedStarters, ctx.config, job, w, ctx.run.id, extraArgs, now);
      w.slurm = jobId === null ? null : newSlurmJob(jobId, now, { state: 'SUBMITTED', reason: 'None', node: null });
      ctx.log.append({
        kind: 'worker.launched',
        target: `worker:${w.id}`,
        data: {
          job: w.job,
          taskId: w.taskId,
          attempt: w.attempt,
          lane: w.lane,
          gpus: w.gpus,
          tier: w.tier,
          strategy: w.strategy,
          argv: spec.command,
          ...(jobId === null ? {} : { slurmJobId: jobId }),
          message: `launched attempt ${w.attempt} of ${w.job}${w.tier ? ` (fallback tier ${w.tier})` : ''}${jobId === null ? '' : ` as SLURM job ${jobId}`}`,
        },
      });
    } catch (err) {
      ctx.logger.error({ worker: w.id, err: errorMessage(err) }, 'launch failed');
      this.undoLaunch(ctx, w, job, `launch failed: ${errorMessage(err)}`, now);
    }
  }

  /** Nothing ran: the attempt does not count, and the worker is launched again after its restart delay. */
  undoLaunch(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob, why: string, now: number): void {
    if (w.attempt > 1) w.restarts -= 1;
    w.attempt -= 1;
    this.host.move(ctx, w, 'backoff', why);
    this.host.setInFlight(ctx, w, { kind: 'backoff', until: now + job.restart.delayMs });
  }

  private pickGpus(ctx: DaemonContext, w: WorkerRecord): number[] {
    const lane = ctx.config.lanes[w.lane];
    if (!lane || lane.kind !== 'gpu' || lane.gpus.length === 0) return [];
    const used = new Map<number, number>(lane.gpus.map((g) => [g, 0]));
    for (const o of this.host.workers.values())
      if (o !== w && o.lane === w.lane && ACTIVE_STATUSES.includes(o.status))
        for (const g of o.gpus) used.set(g, (used.get(g) ?? 0) + 1);
    const best = [...used.entries()].sort((a, b) => a[1] - b[1])[0];
    return best ? [best[0]] : [];
  }
}
