import fs from 'node:fs';
import path from 'node:path';
import { actorDeps, type ActionDeps, type Grantor } from '../actions/action';
import { iso } from '../clock';
import type { CompiledConfig, CompiledJob } from '../config/config';
import type { PublishedConfig } from '../config/reload';
import type { DaemonBehavior, DaemonContext, DaemonRuntime } from '../daemon-runtime';
import { errorMessage, IllegalTransitionError } from '../errors';
import type { FailureClass, Target } from '../event-kinds';
import type { ProcessManager } from '../process-manager';
import { cgroupOomKills, TreeUsageSampler } from '../proc';
import { DAEMON_STATE_FILES, type Incident } from '../state-files';
import { countTasks, getTask, setTaskStatus, tasksWithStatus } from '../task-queue';
import { detectLive, looksHealthy } from './detect';
import { artifactPaths, holdClocks, observeFiles, sampleUsage } from './worker-observer';
import { onHealthy } from './restart-budget';
import { badRequest, pendingCommands } from '../worker/requests';
import { readExit, workerDirOf, workerRoots } from '../worker/files';
import { plateaued } from './plateau';
import { SlurmCli, type Slurm } from '../slurm/slurm-cli';
import { pendingStuck, SlurmJobs } from './slurm-jobs';
import {
  hasProcess,
  processRuns,
  SentryBodySchema,
  shimAlive,
  toView,
  workerAlive,
  type InFlight,
  type WorkerRecord,
} from '../worker/record';
import { IncidentBook } from './incidents';
import { adoptFromDisk, adoptUnrecorded, recordUnloggedLaunch } from './adopt';
import { lostWhileDown, requeueLost } from './lost';
import { WorkChecks } from './work-checks';
import { LaneFiller } from './lane-filler';
import { reconfigureSentry, seedQueue } from './reconfigure';
import { taskWorkerId } from '../worker-ids';
import type { SentryHost } from './sentry-host';
import { WorkerCommands } from './apply-requests';
import { ProcessControl } from './process-control';
import { Remedies } from './remedies';
import { ExitHandler } from './exits';
import { LIVE_STATUSES, setInFlight, transition } from '../worker/lifecycle';

// worker-sentry: owns the worker lifecycle. Each tick it observes every live
// worker (exit file, pid, usage, progress, log, artifacts), classifies what
// went wrong, restarts with backoff inside a budget or quarantines, verifies
// each action on the next attempt, and fills free lane slots from the queue.

const MAX_KEPT_FINISHED = 200;

export class WorkerSentry implements DaemonBehavior, SentryHost {
  readonly workers = new Map<string, WorkerRecord>();
  /** Whole-tree CPU and memory of each worker, with its members cached between walks. */
  private readonly usage = new TreeUsageSampler();
  private readonly incidents = new IncidentBook();
  readonly requeuedCounts: Record<string, { attempt: number; restarts: number }> = {};
  private readonly filler: LaneFiller;
  private readonly commands = new WorkerCommands(this);
  private readonly loops = new WorkChecks(this);
  private readonly remedies = new Remedies(this, this.incidents, this.loops);
  private readonly exits: ExitHandler;
  private readonly processes = new ProcessControl();
  private readonly slurmJobs: SlurmJobs;
  private kernelOomKills: number | null = cgroupOomKills();
  /** Launches adopted from a folder before their shim had shown itself: recorded once it does (adopt.ts). */
  private readonly unconfirmedLaunches = new Set<string>();

  readonly actionDeps: (ctx: DaemonContext) => ActionDeps;

  constructor(
    private readonly pm: ProcessManager,
    makeGrantor: (ctx: DaemonContext) => Grantor,
    slurm: Slurm = new SlurmCli(),
  ) {
    this.actionDeps = actorDeps('worker-sentry', makeGrantor);
    this.slurmJobs = new SlurmJobs(slurm);
    this.filler = new LaneFiller(this, { pm, slurm });
    this.exits = new ExitHandler(this, pm, this.commands, this.loops);
  }

  private watcher: fs.FSWatcher | null = null;
  private runtime: DaemonRuntime | null = null;

  /**
   * A worker's exit is handled at once, not at the next tick: the shim's
   * exit.json appearing wakes the tick loop. Ticks still catch anything the
   * watch misses.
   */
  private watchExits(ctx: DaemonContext, runtime: DaemonRuntime): void {
    const dir = path.join(ctx.config.stateDir, 'workers');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      this.watcher = fs.watch(dir, { recursive: true }, (_event, file) => {
        if (typeof file === 'string' && file.endsWith('exit.json')) runtime.poke();
      });
      this.watcher.on('error', (err) =>
        ctx.logger.warn({ err: errorMessage(err) }, 'exit watch failed; ticks carry on'),
      );
    } catch (err) {
      ctx.logger.warn({ err: errorMessage(err) }, 'cannot watch for exits; ticks carry on');
    }
  }

  start(ctx: DaemonContext, runtime: DaemonRuntime): void {
    this.watchExits(ctx, runtime);
    this.slurmJobs.watch(ctx, ctx.config, () => runtime.poke());
    this.runtime = runtime;
    const prev = ctx.state.read(DAEMON_STATE_FILES['worker-sentry'], SentryBodySchema);
    const prevRun = prev.ok && (prev.value as { runId?: string }).runId === ctx.run.id;
    if (!prev.ok) ctx.logger.warn({ err: prev.error.message }, 'sentry state unreadable: adopting from worker folders');
    const laneOf = (job: string) => ctx.config.jobs[job]?.lane;
    if (prev.ok && prevRun) {
      Object.assign(this.requeuedCounts, prev.value.requeuedCounts);
      const body = prev.value as { incidents?: Incident[]; lastEscalationSeq?: number };
      this.incidents.load(body.incidents ?? []);
      this.remedies.lastEscalationSeq = body.lastEscalationSeq ?? 0;
      for (const w of prev.value.workers) this.workers.set(w.id, w);
      // Workers launched after the last state write (the sentry ended mid-tick) run, or ran, all the same:
      // adopt those too, or they would run on unwatched, or their exit be taken for an older attempt's.
      for (const id of adoptUnrecorded(ctx, this.workers, laneOf)) this.unconfirmedLaunches.add(id);
    } else {
      for (const w of adoptFromDisk(workerRoots(ctx.config), laneOf, { runId: ctx.run.id })) {
        recordUnloggedLaunch(ctx, w);
        this.workers.set(w.id, w);
      }
    }
    this.filler.settleOrphanedFills(ctx);
    const now = ctx.clock.now();
    // A task requeued already (a sentry that restarted again before it relaunched it) is not lost twice.
    const taskRuns = (w: WorkerRecord) => !w.taskId || getTask(ctx.db, ctx.run.id, w.taskId)?.status === 'running';
    for (const w of [...this.workers.values()])
      if (taskRuns(w) && lostWhileDown(w, workerDirOf(ctx.config, w))) requeueLost(this, ctx, w, now);
    for (const w of this.workers.values()) {
      // A slurm job's state is SLURM's to say, at the first tick; a job that ended meanwhile is handled there.
      if (LIVE_STATUSES.includes(w.status) && processRuns(w)) {
        ctx.log.append({
          kind: 'worker.adopted',
          target: `worker:${w.id}`,
          data: {
            pid: w.pid,
            attempt: w.attempt,
            ...(w.slurm ? { slurmJobId: w.slurm.jobId } : {}),
            message: w.slurm ? `adopted SLURM job ${w.slurm.jobId}` : `adopted running worker pid=${w.pid}`,
          },
        });
      }
    }
    seedQueue(ctx, ctx.config);
    // A task the database calls running with no worker for it was lost with a previous sentry: queue it again.
    for (const t of tasksWithStatus(ctx.db, ctx.run.id, 'running')) {
      const wid = taskWorkerId(t.job, t.id);
      if (!this.workers.has(wid)) {
        setTaskStatus(ctx.db, ctx.run.id, t.id, 'queued', iso(now));
        ctx.log.append({
          kind: 'task.requeued',
          target: `task:${t.id}`,
          data: { reason: 'no worker record after sentry restart' },
        });
      }
    }
  }

  async reconfigure(ctx: DaemonContext, next: CompiledConfig, published: PublishedConfig): Promise<CompiledConfig> {
    const applied = await reconfigureSentry(this, ctx, next, published);
    if (this.runtime) {
      const runtime = this.runtime;
      this.slurmJobs.watch(ctx, applied, () => runtime.poke());
    }
    return applied;
  }

  async tick(ctx: DaemonContext): Promise<void> {
    this.remedies.applyEscalationAcks(ctx);
    for (const cmd of pendingCommands(ctx.db, badRequest(ctx))) await this.commands.apply(ctx, cmd);
    const oom = cgroupOomKills();
    const kernelOom = oom !== null && this.kernelOomKills !== null && oom > this.kernelOomKills;
    this.kernelOomKills = oom;
    await this.slurmJobs.refresh(ctx, this.workers.values());
    for (const w of [...this.workers.values()]) {
      // Each worker's own clock reading: a remedy awaited for one worker (a grant, a stop's grace) can
      // take seconds, and a progress seen after it is not progress seen at the tick's start.
      const now = ctx.clock.now();
      try {
        if (w.inFlight.kind === 'verifying') {
          await this.loops.settleVerify(ctx, w, now);
          continue;
        }
        if (LIVE_STATUSES.includes(w.status) || w.pid !== null || hasProcess(w))
          await this.observe(ctx, w, now, kernelOom);
      } catch (err) {
        ctx.logger.error({ worker: w.id, err: errorMessage(err), stack: (err as Error).stack }, 'observe failed');
      }
    }
    await this.filler.fill(ctx, ctx.clock.now());
    this.prune();
    this.usage.retain([...this.workers.values()].flatMap((w) => (w.pid === null ? [] : [w.pid])));
  }

  /**
   * While ticks were held for a full disk, workers writing to the same disk
   * could not show progress or output either: the pause is not held against
   * them. Their progress and log clocks move on by the time held.
   */
  afterHold(ctx: DaemonContext, heldMs: number): void {
    const now = ctx.clock.now();
    for (const w of this.workers.values()) if (LIVE_STATUSES.includes(w.status)) holdClocks(w, heldMs, now);
  }

  // ---- observation --------------------------------------------------------

  private async observe(ctx: DaemonContext, w: WorkerRecord, now: number, kernelOom: boolean): Promise<void> {
    const job = ctx.config.jobs[w.job];
    const dir = workerDirOf(ctx.config, w);
    if (!job) return;
    if (w.slurm) return this.observeSlurm(ctx, w, job, dir, now);
    // Until the kernel has vouched for the pid the shim reported, it is not believed (a record from an
    // older sentry has no identity yet: it gets one the same way).
    if (w.pid === null || w.identity === null) this.processes.learnPid(ctx, w, dir);
    const exit = readExit(dir);
    if ((exit || w.pid !== null) && this.unconfirmedLaunches.delete(w.id)) recordUnloggedLaunch(ctx, w);
    if (exit) return this.exits.onExit(ctx, w, job, exit, kernelOom);
    if (w.pid === null) {
      if (w.launchedAt !== null && now - w.launchedAt > 15_000) {
        // A start adopted from its folder that never showed itself was never asked of PM2: nothing ran.
        if (this.unconfirmedLaunches.delete(w.id)) return this.filler.undoLaunch(ctx, w, job, 'never started', now);
        return this.exits.onExit(
          ctx,
          w,
          job,
          { exitCode: null, signal: null, endedAt: iso(now), error: 'the shim never reported a pid' },
          kernelOom,
        );
      }
      return;
    }
    if (!workerAlive(w)) {
      // The shim records every exit; no record means the shim itself died first.
      if (!shimAlive(w))
        return this.exits.onExit(
          ctx,
          w,
          job,
          { exitCode: null, signal: null, endedAt: iso(now), error: 'worker and shim gone without an exit record' },
          kernelOom,
        );
      return;
    }
    if (!shimAlive(w)) {
      const refused = await this.processes.endGroup(ctx, w, job.stopGraceMs);
      const error = refused ? `shim lost; worker not signalled: ${refused}` : 'shim lost; orphaned worker ended';
      return this.exits.onExit(
        ctx,
        w,
        job,
        { exitCode: null, signal: refused ? null : 'SIGKILL', endedAt: iso(now), error },
        kernelOom,
      );
    }
    if (this.processes.stopLeftUnfinished(w)) return this.stopProcess(ctx, w, job);
    sampleUsage(this.usage, w, now);
    return this.judgeLive(ctx, w, job, dir, now);
  }

  /** A slurm worker: its job's state, from this tick's squeue, stands where a local worker's pid does. */
  private async observeSlurm(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob, dir: string, now: number) {
    const r = this.slurmJobs.read(ctx.config, w, dir, now);
    await this.slurmJobs.finishStop(ctx, w, job.stopGraceMs, now);
    switch (r.kind) {
      case 'unknown':
      case 'ending':
        return;
      case 'ended':
        return this.exits.onExit(ctx, w, job, r.exit, false, r.end);
      case 'running':
        return this.judgeLive(ctx, w, job, dir, now);
      case 'pending': {
        // Waiting is not a fault Swarm can fix: a person decides (the partition, the request, the queue).
        const stuck = pendingStuck(w, r, now);
        if (!stuck || !LIVE_STATUSES.includes(w.status) || w.inFlight.kind !== 'idle') return;
        w.detectedThisAttempt.push('pending_stuck');
        return this.remediate(ctx, w, job, 'pending_stuck', 'escalate', stuck, now);
      }
    }
  }

  /** The checks on a running worker, local or slurm: progress, log, startup, artifacts, plateau, convergence. */
  private async judgeLive(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob, dir: string, now: number) {
    const warn = (x: WorkerRecord, bad: string[]) =>
      ctx.logger.warn(
        { worker: x.id, attempt: x.attempt, fields: bad },
        'progress fields ignored: not the expected type',
      );
    if (observeFiles(ctx.config, job, w, dir, now, warn).progressResumed && w.status === 'stale')
      this.move(ctx, w, 'running', 'progress resumed');
    // A worker being stopped, or waiting out its backoff, is not judged again.
    if (this.processes.stopping.has(w.id) || !LIVE_STATUSES.includes(w.status)) return;
    if (w.status === 'starting' && looksHealthy(w, job, now, ctx.config.tickMs))
      this.move(ctx, w, 'running', 'healthy');
    if (w.pending && w.status === 'running') this.verifyPending(ctx, w, now);
    if (!w.pending && w.status === 'running') w.history = onHealthy(job.restart, w.history, now);
    if (w.inFlight.kind === 'awaiting-grant') {
      if (now >= w.inFlight.retryAt) await this.act(ctx, w, job, w.inFlight.failure, now);
      return;
    }
    if (await this.loops.converge(ctx, w, job)) return;
    if (job.plateau && !w.detectedThisAttempt.includes('plateau')) {
      const why = plateaued(w.plateau, job.plateau, now);
      if (why) {
        w.detectedThisAttempt.push('plateau');
        return this.loops.onPlateau(ctx, w, job, why, now);
      }
    }
    for (const d of detectLive(w, job, now, artifactPaths(job, w))) {
      w.detectedThisAttempt.push(d.class);
      if (d.class === 'progress_stale' && w.status !== 'stale') this.move(ctx, w, 'stale', d.message);
      await this.remediate(ctx, w, job, d.class, 'restart', { ...d.evidence, message: d.message }, now);
      break;
    }
  }

  private verifyPending(ctx: DaemonContext, w: WorkerRecord, now: number): void {
    const p = w.pending;
    if (!p || w.attempt < p.verifyAttempt) return;
    this.finishPending(ctx, w, 'verified', {
      message: `new pid ${w.pid} online and healthy on attempt ${w.attempt}`,
      pid: w.pid,
      attempt: w.attempt,
    });
    this.closeIncidents(w, 'resolved', now);
  }

  // ---- the SentryHost face: remedies and processes live in remedies.ts and process-control.ts ----

  readonly remediate: SentryHost['remediate'] = (...a) => this.remedies.remediate(...a);
  readonly act: SentryHost['act'] = (...a) => this.remedies.act(...a);
  readonly finishPending: SentryHost['finishPending'] = (...a) => this.remedies.finishPending(...a);
  readonly raiseEscalation: SentryHost['raiseEscalation'] = (...a) => this.remedies.raiseEscalation(...a);

  async stopProcess(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob): Promise<void> {
    if (!processRuns(w)) return;
    this.processes.beginStop(w);
    // On disk before the signal: a successor then knows this exit was asked for, and what comes next.
    this.runtime?.checkpoint();
    try {
      if (w.slurm) await this.slurmJobs.stop(ctx, w);
      else await this.processes.endGroup(ctx, w, job.stopGraceMs);
    } finally {
      this.processes.stopping.delete(w.id);
    }
  }

  // ---- bookkeeping --------------------------------------------------------

  /** The worker lifecycle's setter (lib/worker/lifecycle.ts); an illegal move is refused and logged, and the tick goes on. */
  move(ctx: DaemonContext, w: WorkerRecord, to: WorkerRecord['status'], reason: string): void {
    try {
      transition(w, to, reason, ctx.logger);
    } catch (err) {
      if (!(err instanceof IllegalTransitionError)) throw err;
      ctx.logger.error({ worker: w.id, from: w.status, to, reason }, 'illegal worker transition refused');
    }
  }

  setInFlight(ctx: DaemonContext, w: WorkerRecord, next: InFlight): void {
    try {
      setInFlight(w, next, ctx.logger);
    } catch (err) {
      if (!(err instanceof IllegalTransitionError)) throw err;
      ctx.logger.error({ worker: w.id, from: w.inFlight.kind, to: next.kind }, 'illegal in-flight move refused');
    }
  }

  openIncident(w: WorkerRecord, seq: number, cls: FailureClass, target: Target, now: number): void {
    this.incidents.open(seq, cls, target, now);
    w.openIncidents.push(seq);
  }

  closeIncidents(w: WorkerRecord, status: 'resolved' | 'escalated', now: number): void {
    this.incidents.close(w.openIncidents, status, now);
    w.openIncidents = [];
  }

  private prune(): void {
    const finished = [...this.workers.values()].filter((w) => w.status === 'completed' || w.status === 'failed');
    for (const w of finished.slice(0, Math.max(0, finished.length - MAX_KEPT_FINISHED))) this.workers.delete(w.id);
  }

  snapshot(ctx: DaemonContext): Record<string, unknown> {
    const now = ctx.clock.now();
    return {
      workers: [...this.workers.values()],
      requeuedCounts: this.requeuedCounts,
      views: [...this.workers.values()].map((w) => toView(w, now)),
      incidents: this.incidents.list(),
      lastEscalationSeq: this.remedies.lastEscalationSeq,
      tasks: countTasks(ctx.db, ctx.run.id),
      launchDecisionSeconds: this.filler.decisionTimings.snapshot(),
    };
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    await this.slurmJobs.close();
    this.pm.close();
  }
}
