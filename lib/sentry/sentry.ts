import fs from 'node:fs';
import path from 'node:path';
import { Action, actorDeps, type ActionDeps, type Grantor } from '../actions/action';
import { iso } from '../clock';
import type { CompiledConfig, CompiledJob } from '../config/config';
import type { PublishedConfig } from '../config/reload';
import type { DaemonBehavior, DaemonContext, DaemonRuntime } from '../daemon-runtime';
import { errorMessage, IllegalTransitionError } from '../errors';
import type { FailureClass, Target } from '../event-kinds';
import { killProcessGroup } from '../kill';
import type { ProcessManager } from '../process-manager';
import { cgroupOomKills, TreeUsageSampler } from '../proc';
import { DAEMON_STATE_FILES, type Incident } from '../state-files';
import { countTasks, setTaskStatus, tasksWithStatus } from '../task-queue';
import { classifyExit, type RuleAction } from './classify';
import { detectLive, looksHealthy } from './detect';
import { readTail } from '../worker/read';
import { artifactPaths, observeFiles, sampleUsage } from './worker-observer';
import { onFailure, onHealthy } from './restart-budget';
import { pendingCommands } from '../worker/requests';
import { raiseEscalation, resolvedEscalations } from '../escalations';
import { readExit, readKillReason, workerDir, type ExitRecord } from '../worker/files';
import { readWorkerPid } from './worker-pid';
import { plateaued } from './plateau';
import {
  LIVE_STATUSES,
  pm2NameOf,
  SentryBodySchema,
  shimAlive,
  toView,
  workerAlive,
  workerIdentity,
  type WorkerRecord,
} from '../worker/record';
import { IncidentBook } from './incidents';
import { adoptFromDisk } from './adopt';
import { WorkChecks } from './work-checks';
import { LaneFiller } from './lane-filler';
import { writeLastFailure } from './last-failure';
import { taskResult } from './task-result';
import { reconfigureSentry, seedQueue } from './reconfigure';
import { taskWorkerId } from '../worker-ids';
import type { SentryHost } from './sentry-host';
import { WorkerCommands } from './apply-requests';
import { transition } from '../worker/lifecycle';
import { exitOutcome, loopClass } from './exit-outcome';

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
  readonly carried: Record<string, { attempt: number; restarts: number }> = {};
  private readonly filler: LaneFiller;
  private readonly commands = new WorkerCommands(this);
  private readonly loops = new WorkChecks(this);
  private lastEscalationSeq = 0;
  private kernelOomKills: number | null = cgroupOomKills();
  private stopping = new Set<string>();
  /** Signal refusals already recorded, by worker, attempt and reason. */
  private readonly refusals = new Set<string>();

  readonly actionDeps: (ctx: DaemonContext) => ActionDeps;

  constructor(
    private readonly pm: ProcessManager,
    makeGrantor: (ctx: DaemonContext) => Grantor,
  ) {
    this.actionDeps = actorDeps('worker-sentry', makeGrantor);
    this.filler = new LaneFiller(this, pm);
  }

  private watcher: fs.FSWatcher | null = null;

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
    const prev = ctx.state.read(DAEMON_STATE_FILES['worker-sentry'], SentryBodySchema);
    const prevRun = prev.ok && (prev.value as { runId?: string }).runId === ctx.run.id;
    if (!prev.ok) ctx.logger.warn({ err: prev.error.message }, 'sentry state unreadable: adopting from worker folders');
    const laneOf = (job: string) => ctx.config.jobs[job]?.lane;
    if (prev.ok && prevRun) {
      Object.assign(this.carried, prev.value.carried);
      const body = prev.value as { incidents?: Incident[]; lastEscalationSeq?: number };
      this.incidents.load(body.incidents ?? []);
      this.lastEscalationSeq = body.lastEscalationSeq ?? 0;
      for (const w of prev.value.workers) this.workers.set(w.id, w);
      // Workers launched after the last state write (the sentry ended mid-tick) are running all
      // the same: adopt those too, or they would run on unwatched while their task ran again.
      for (const w of adoptFromDisk(ctx.config.stateDir, laneOf, { aliveOnly: true })) {
        const known = this.workers.get(w.id);
        if (!known) this.workers.set(w.id, w);
        else if (known.attempt < w.attempt) {
          Object.assign(known, {
            attempt: w.attempt,
            pid: w.pid,
            pgid: w.pgid,
            shimPid: w.shimPid,
            identity: w.identity,
            launchedAt: w.launchedAt,
            status: 'running',
            backoffUntil: null,
            regrant: null,
            startupSeen: true,
            progressAdvancedSinceLaunch: true,
          });
        }
      }
    } else {
      for (const w of adoptFromDisk(ctx.config.stateDir, laneOf)) this.workers.set(w.id, w);
    }
    this.filler.settleOrphanedFills(ctx);
    for (const w of this.workers.values()) {
      if (LIVE_STATUSES.includes(w.status) && workerAlive(w)) {
        ctx.log.append({
          kind: 'worker.adopted',
          target: `worker:${w.id}`,
          data: { pid: w.pid, attempt: w.attempt, message: `adopted running worker pid=${w.pid}` },
        });
      }
    }
    seedQueue(ctx, ctx.config);
    // A task the database calls running with no worker for it was lost with a previous sentry: queue it again.
    for (const t of tasksWithStatus(ctx.db, ctx.run.id, 'running')) {
      const wid = taskWorkerId(t.job, t.id);
      if (!this.workers.has(wid)) {
        setTaskStatus(ctx.db, ctx.run.id, t.id, 'queued', iso(ctx.clock.now()));
        ctx.log.append({
          kind: 'task.requeued',
          target: `task:${t.id}`,
          data: { reason: 'no worker record after sentry restart' },
        });
      }
    }
  }

  reconfigure(ctx: DaemonContext, next: CompiledConfig, published: PublishedConfig): Promise<CompiledConfig> {
    return reconfigureSentry(this, ctx, next, published);
  }

  async tick(ctx: DaemonContext): Promise<void> {
    const now = ctx.clock.now();
    this.applyEscalationAcks(ctx);
    for (const cmd of pendingCommands(ctx.db)) await this.commands.apply(ctx, cmd);
    const oom = cgroupOomKills();
    const kernelOom = oom !== null && this.kernelOomKills !== null && oom > this.kernelOomKills;
    this.kernelOomKills = oom;
    for (const w of [...this.workers.values()]) {
      try {
        if (w.verifying) {
          await this.loops.settleVerify(ctx, w, now);
          continue;
        }
        if (LIVE_STATUSES.includes(w.status) || w.pid !== null) await this.observe(ctx, w, now, kernelOom);
      } catch (err) {
        ctx.logger.error({ worker: w.id, err: errorMessage(err), stack: (err as Error).stack }, 'observe failed');
      }
    }
    await this.filler.fill(ctx, now);
    this.prune();
    this.usage.retain([...this.workers.values()].flatMap((w) => (w.pid === null ? [] : [w.pid])));
  }

  // ---- observation --------------------------------------------------------

  private async observe(ctx: DaemonContext, w: WorkerRecord, now: number, kernelOom: boolean): Promise<void> {
    const job = ctx.config.jobs[w.job];
    const dir = workerDir(ctx.config.stateDir, w.id);
    if (!job) return;
    // Until the kernel has vouched for the pid the shim reported, it is not believed (a record from an
    // older sentry has no identity yet: it gets one the same way).
    if (w.pid === null || w.identity === null) this.learnPid(ctx, w, dir);
    const exit = readExit(dir);
    if (exit) return this.onExit(ctx, w, job, exit, kernelOom);
    if (w.pid === null) {
      if (w.launchedAt !== null && now - w.launchedAt > 15_000) {
        return this.onExit(
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
        return this.onExit(
          ctx,
          w,
          job,
          { exitCode: null, signal: null, endedAt: iso(now), error: 'worker and shim gone without an exit record' },
          kernelOom,
        );
      return;
    }
    if (!shimAlive(w)) {
      const refused = await this.endGroup(ctx, w, job.stopGraceMs);
      const error = refused ? `shim lost; worker not signalled: ${refused}` : 'shim lost; orphaned worker ended';
      return this.onExit(
        ctx,
        w,
        job,
        { exitCode: null, signal: refused ? null : 'SIGKILL', endedAt: iso(now), error },
        kernelOom,
      );
    }
    sampleUsage(this.usage, w, now);
    const warn = (x: WorkerRecord, bad: string[]) =>
      ctx.logger.warn(
        { worker: x.id, attempt: x.attempt, fields: bad },
        'progress fields ignored: not the expected type',
      );
    if (observeFiles(ctx.config, job, w, dir, now, warn).progressResumed && w.status === 'stale')
      this.move(ctx, w, 'running', 'progress resumed');
    // A worker being stopped, or waiting out its backoff, is not judged again.
    if (this.stopping.has(w.id) || !LIVE_STATUSES.includes(w.status)) return;
    if (w.status === 'starting' && looksHealthy(w, job, now, ctx.config.tickMs))
      this.move(ctx, w, 'running', 'healthy');
    if (w.pending && w.status === 'running') this.verifyPending(ctx, w, now);
    if (!w.pending && w.status === 'running') w.history = onHealthy(job.restart, w.history, now);
    if (w.regrant) {
      if (now >= (w.deniedUntil ?? 0)) await this.act(ctx, w, job, w.regrant, now);
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

  // ---- exits --------------------------------------------------------------

  private async onExit(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    exit: ExitRecord,
    kernelOom: boolean,
  ): Promise<void> {
    const now = ctx.clock.now();
    const runtimeMs = w.launchedAt === null ? null : now - w.launchedAt;
    const intent = w.stopIntent;
    ctx.log.append({
      kind: 'worker.exited',
      target: `worker:${w.id}`,
      severity: exit.exitCode === 0 || intent ? 'info' : 'warn',
      data: {
        exitCode: exit.exitCode,
        signal: exit.signal,
        pid: w.pid,
        attempt: w.attempt,
        runtimeMs,
        requestedBy: intent ? 'swarm' : null,
        error: exit.error ?? null,
        message: `exited code=${exit.exitCode} signal=${exit.signal}${intent ? ` (${intent} requested)` : ''}`,
      },
    });
    // Awaited, so a relaunch in this same tick cannot race the removal of the old app.
    await this.pm
      .delete(pm2NameOf(w.id))
      .catch((err: unknown) => ctx.logger.warn({ worker: w.id, err: errorMessage(err) }, 'pm2 delete failed'));
    const pid = w.pid;
    Object.assign(w, {
      pid: null,
      pgid: null,
      shimPid: null,
      identity: null,
      cpuPct: null,
      cpuTicks: null,
      stopIntent: null,
    });
    const killed = readKillReason(workerDir(ctx.config.stateDir, w.id));
    const outcome = exitOutcome({
      intent,
      exit,
      isTask: w.taskId !== null,
      hasVerify: job.verify !== null,
      kill: killed && killed.pid === pid ? killed : null,
    });
    switch (outcome.kind) {
      case 'stopped':
        this.move(ctx, w, 'stopped', 'stopped on request');
        this.finishPending(ctx, w, 'verified', { message: `worker stopped; pid ${pid} gone` });
        // Back in the queue, but held: fill() skips a task whose worker is stopped until `swarmctl restart`.
        // A removed job's task has nowhere to go back to.
        if (w.taskId) setTaskStatus(ctx.db, ctx.run.id, w.taskId, job.retired ? 'failed' : 'queued', iso(now));
        return;
      case 'requeued':
        return this.commands.requeue(ctx, w, now);
      case 'restart-requested':
        this.move(ctx, w, 'backoff', 'restart requested');
        return;
      case 'stopped-through-pm2':
        this.move(ctx, w, 'backoff', 'stopped through PM2');
        w.backoffUntil = now;
        return;
      case 'verify':
        w.lastExit = { exitCode: 0, signal: null, class: null };
        // "Done" is not done until the guard agrees; the worker stays running while it checks.
        w.verifying = true;
        this.loops.startVerify(ctx, w, job);
        return;
      case 'completed':
        w.lastExit = { exitCode: 0, signal: null, class: null };
        return this.completeTask(ctx, w, job, runtimeMs, now);
      case 'replica-exited':
        w.lastExit = { exitCode: 0, signal: null, class: null };
        // A replica is kept alive for ever: relaunch it, without counting a failure.
        this.move(ctx, w, 'backoff', 'replica exited 0');
        w.backoffUntil = now + job.restart.delayMs;
        return;
      case 'ended-by': {
        // Another daemon already recorded the detection: remedy under its incident.
        const k = outcome.kill;
        w.lastExit = { exitCode: exit.exitCode, signal: exit.signal, class: k.class };
        w.openIncidents.push(k.incidentId);
        this.incidents.open(k.incidentId, k.class, `worker:${w.id}`, now);
        this.finishPending(ctx, w, 'failed', { message: `worker ended by ${k.by} before it was verified` });
        return this.act(
          ctx,
          w,
          job,
          { cls: k.class, incidentId: k.incidentId, reason: k.message, ruleAction: 'restart' },
          now,
        );
      }
      case 'failed':
        return this.onFailure(ctx, w, job, exit, pid, runtimeMs, kernelOom, now);
    }
  }

  private completeTask(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    runtimeMs: number | null,
    now: number,
  ): void {
    const taskId = w.taskId as string;
    this.finishPending(ctx, w, 'verified', { message: `task ${taskId} completed on attempt ${w.attempt}` });
    this.move(ctx, w, 'completed', 'exit 0');
    setTaskStatus(ctx.db, ctx.run.id, taskId, 'completed', iso(now));
    ctx.log.append({
      kind: 'task.completed',
      target: `task:${taskId}`,
      data: {
        workerId: w.id,
        attempt: w.attempt,
        runtimeMs,
        ...taskResult(ctx.config, job, w),
        message: `task ${taskId} completed on attempt ${w.attempt}`,
      },
    });
    this.closeIncidents(w, 'resolved', now);
  }

  /** A plain failure: classified from the exit, the log tail and memory, then remedied. */
  private async onFailure(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    exit: ExitRecord,
    pid: number | null,
    runtimeMs: number | null,
    kernelOom: boolean,
    now: number,
  ): Promise<void> {
    const lastRss = w.memBytes;
    const c = classifyExit(job.failures, {
      exitCode: exit.exitCode,
      signal: exit.signal,
      logTail: readTail(path.join(workerDir(ctx.config.stateDir, w.id), 'output.log')),
      lastRssBytes: lastRss,
      memoryLimitBytes: job.memoryLimitBytes,
      kernelOomKilled: kernelOom && exit.signal === 'SIGKILL',
    });
    w.lastExit = { exitCode: exit.exitCode, signal: exit.signal, class: c.class };
    this.finishPending(ctx, w, 'failed', {
      message: `worker failed again before it was verified (${c.class})`,
      exitCode: exit.exitCode,
      signal: exit.signal,
    });
    const cls = loopClass(c.class, w.history.streak);
    const holder = c.class === 'lock_conflict' ? this.loops.lockHolder(w, Number(c.evidence.holderPid ?? 0)) : null;
    const said =
      cls === 'crash_loop'
        ? `${w.history.streak + 1} failures in a row, last ${c.class} (code=${exit.exitCode} signal=${exit.signal})`
        : `${c.class}: code=${exit.exitCode} signal=${exit.signal}`;
    const message = holder ? `${said}; ${holder.text}` : said;
    await this.remediate(
      ctx,
      w,
      job,
      cls,
      c.action,
      { ...c.evidence, ...holder?.evidence, pid, underlying: c.class, runtimeMs, message },
      now,
    );
  }

  // ---- remediation ----------------------------------------------------------

  async remediate(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    cls: FailureClass,
    ruleAction: RuleAction,
    evidence: Record<string, unknown>,
    now: number,
  ): Promise<void> {
    const target: Target = `worker:${w.id}`;
    // Log tails can hold what a worker printed: the event log cuts secret values out of every event's data.
    const detect = ctx.log.append({
      kind: `detect.${cls}`,
      target,
      severity: 'warn',
      data: { class: cls, attempt: w.attempt, pid: w.pid, ...evidence },
    });
    this.incidents.open(detect.seq, cls, target, now);
    w.openIncidents.push(detect.seq);
    // A new failure ends whatever action was still waiting to be verified on this worker, and frees its lease.
    this.finishPending(ctx, w, 'failed', { message: `worker failed (${cls}) before it was verified` });
    w.failureCounts[cls] = (w.failureCounts[cls] ?? 0) + 1;
    const count = w.failureCounts[cls] ?? 0;
    writeLastFailure(ctx, w, cls, evidence, w.taskId && count >= job.stagnationAfter ? { repeated: cls, count } : null);
    const fallback = job.fallbacks[w.tier];
    if (fallback?.on.includes(cls)) {
      // The next tier is another way to the same result: switch to it instead of retrying this one.
      w.tier += 1;
      return this.act(
        ctx,
        w,
        job,
        {
          cls,
          incidentId: detect.seq,
          reason: `${cls} on tier ${w.tier - 1}: falling back to tier ${w.tier} (${fallback.command.join(' ')})`,
          ruleAction: 'restart',
        },
        now,
      );
    }
    if (w.taskId && (w.failureCounts[cls] ?? 0) >= job.stagnationAfter) {
      const st = ctx.log.append({
        kind: 'detect.stagnation',
        target,
        severity: 'error',
        data: {
          class: 'stagnation',
          repeated: cls,
          count: w.failureCounts[cls],
          lastEvidence: evidence,
          message: `${cls} ${w.failureCounts[cls]} times on task ${w.taskId}`,
        },
      });
      await this.stopProcess(ctx, w, job);
      return await this.quarantine(
        ctx,
        w,
        `stagnation: ${cls} ${w.failureCounts[cls]} times on task ${w.taskId} (last: ${String(evidence.message ?? '')})`,
        st.seq,
      );
    }
    if (cls === 'lock_conflict') await this.loops.freeLock(ctx, w, Number(evidence.holderPid ?? 0), detect.seq);
    if (ruleAction === 'quarantine')
      return await this.quarantine(
        ctx,
        w,
        `${cls}: restarting cannot help (${String(evidence.matchedLine ?? evidence.message ?? '')})`,
        detect.seq,
      );
    if (ruleAction === 'escalate') {
      this.raiseEscalation(ctx, w, `${cls}: ${String(evidence.message ?? '')}`, detect.seq);
      return;
    }
    await this.act(
      ctx,
      w,
      job,
      {
        cls,
        incidentId: detect.seq,
        reason: String(evidence.message ?? cls),
        ruleAction: ruleAction === 'stop' ? 'stop' : 'restart',
      },
      now,
    );
  }

  /** Asks for the remediation of one failure and carries it out; a denial is asked again later under the same incident. */
  async act(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    f: NonNullable<WorkerRecord['regrant']>,
    now: number,
  ): Promise<void> {
    const { decision, history } = onFailure(job.restart, w.history, now);
    if (!decision.restart && f.ruleAction === 'restart') {
      w.history = history;
      w.regrant = null;
      await this.stopProcess(ctx, w, job);
      return await this.quarantine(ctx, w, `${decision.reason}; last: ${f.reason}`, f.incidentId);
    }
    const type = f.ruleAction === 'stop' ? 'stop_worker' : 'restart_worker';
    const action = await Action.propose(this.actionDeps(ctx), {
      type,
      target: `worker:${w.id}`,
      priority: 'recovery',
      reason: f.reason,
      incidentId: f.incidentId,
    });
    this.incidents.addAction(f.incidentId, action.id);
    if (!action.granted) {
      // Asked again after a pause, not every tick; longer while the circuit breaker
      // is open, so a storm of failures makes no storm of proposals.
      w.regrant = f;
      w.deniedUntil = now + (/breaker/.test(action.deniedReason ?? '') ? 20 : 5) * ctx.config.tickMs;
      if (w.pid === null) {
        if (w.status !== 'backoff') this.move(ctx, w, 'backoff', `waiting for a grant: ${action.deniedReason}`);
        w.backoffUntil = w.deniedUntil;
      }
      return;
    }
    w.regrant = null;
    w.deniedUntil = null;
    this.finishPending(ctx, w, 'failed', { message: `superseded by action ${action.id}` });
    w.history = decision.restart ? history : w.history;
    action.started({ attempt: w.attempt, delayMs: decision.restart ? decision.delayMs : null });
    this.incidents.setStatus(f.incidentId, 'remediating');
    w.pending = {
      id: action.id,
      type,
      incidentId: f.incidentId,
      leaseHolder: 'worker-sentry',
      startedAt: now,
      verifyAttempt: w.attempt + 1,
      intent: f.ruleAction,
    };
    if (f.ruleAction === 'stop') {
      w.stopIntent = 'stop';
      await this.stopProcess(ctx, w, job);
      return;
    }
    w.stopIntent = w.pid !== null ? 'restart' : null;
    if (w.status !== 'backoff')
      this.move(ctx, w, 'backoff', `${f.cls}; restart in ${decision.restart ? decision.delayMs : 0}ms`);
    w.backoffUntil = now + (decision.restart ? decision.delayMs : 0);
    await this.stopProcess(ctx, w, job);
  }

  async stopProcess(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob): Promise<void> {
    if (w.pid === null || !workerAlive(w)) return;
    this.stopping.add(w.id);
    try {
      await this.endGroup(ctx, w, job.stopGraceMs);
    } finally {
      this.stopping.delete(w.id);
    }
  }

  /** Ends the worker's process group if it is still the one the kernel vouched for; returns why not, if it refused. */
  private async endGroup(ctx: DaemonContext, w: WorkerRecord, graceMs: number): Promise<string | null> {
    const id = workerIdentity(w);
    const res = id
      ? await killProcessGroup(id, graceMs, ctx.clock)
      : { refused: 'the kernel never confirmed this pid as the worker Swarm started' };
    if (res.refused === null) ctx.logger.info({ worker: w.id, ...res }, 'worker process group ended');
    else this.refuseSignal(ctx, w, { pid: w.pid, pgid: w.pgid, shimPid: w.shimPid }, res.refused);
    return res.refused;
  }

  private learnPid(ctx: DaemonContext, w: WorkerRecord, dir: string): void {
    const r = readWorkerPid(dir, w.id);
    if (r.kind === 'vouched' && (w.pid === null || w.pid === r.fields.pid)) Object.assign(w, r.fields);
    else if (r.kind === 'gone' && w.pid === null) Object.assign(w, r.fields);
    else if (r.kind === 'refused') this.refuseSignal(ctx, w, r.reported, r.reason);
  }

  /** Recorded once per worker attempt and reason: Swarm will not signal a process it cannot vouch for. */
  private refuseSignal(
    ctx: DaemonContext,
    w: WorkerRecord,
    reported: Record<string, number | null>,
    reason: string,
  ): void {
    const key = `${w.id}:${w.attempt}:${reason}`;
    if (this.refusals.has(key)) return;
    this.refusals.add(key);
    ctx.log.append({
      kind: 'worker.signal_refused',
      target: `worker:${w.id}`,
      severity: 'error',
      data: { ...reported, attempt: w.attempt, reason, message: `not signalled: ${reason}` },
    });
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

  finishPending(
    ctx: DaemonContext,
    w: WorkerRecord,
    outcome: 'verified' | 'failed',
    evidence: Record<string, unknown>,
  ): void {
    const p = w.pending;
    if (!p) return;
    w.pending = null;
    const deps = { ...this.actionDeps(ctx), actor: p.leaseHolder };
    const target = (p.target ?? `worker:${w.id}`) as Target;
    const action = Action.resume(deps, {
      id: p.id,
      type: p.type as 'restart_worker',
      target,
      incidentId: p.incidentId,
      state: 'started',
      proposedAt: p.startedAt,
      startedAt: p.startedAt,
    });
    if (outcome === 'verified') action.verified(evidence);
    else action.failed(evidence);
  }

  private async quarantine(
    ctx: DaemonContext,
    w: WorkerRecord,
    reason: string,
    incidentId: number | null,
  ): Promise<void> {
    const action = await Action.propose(this.actionDeps(ctx), {
      type: 'quarantine',
      target: `worker:${w.id}`,
      priority: 'safety',
      reason,
      incidentId,
    });
    this.incidents.addAction(incidentId, action.id);
    if (action.granted) action.started();
    this.move(ctx, w, 'quarantined', reason);
    if (w.taskId) setTaskStatus(ctx.db, ctx.run.id, w.taskId, 'quarantined', iso(ctx.clock.now()));
    this.raiseEscalation(ctx, w, reason, incidentId);
    if (action.granted)
      action.verified({ message: `worker ${w.id} quarantined; waiting for a person (swarmctl ack ${w.escalationId})` });
    this.closeIncidents(w, 'escalated', ctx.clock.now());
  }

  raiseEscalation(ctx: DaemonContext, w: WorkerRecord, reason: string, incidentId: number | null): void {
    const e = raiseEscalation(ctx.log, {
      target: `worker:${w.id}`,
      reason,
      incidentId,
      data: { workerId: w.id, taskId: w.taskId },
    });
    w.escalationId = e.seq;
  }

  private applyEscalationAcks(ctx: DaemonContext): void {
    for (const r of resolvedEscalations(ctx.db, this.lastEscalationSeq)) {
      this.lastEscalationSeq = Math.max(this.lastEscalationSeq, r.seq);
      const w = [...this.workers.values()].find((x) => x.escalationId === r.escalationId);
      if (!w || w.status !== 'quarantined') continue;
      // A person looked at it: a fresh budget, and it may run again.
      w.history = { restartTimes: [], streak: 0, healthySince: null };
      w.escalationId = null;
      this.move(ctx, w, 'backoff', `escalation ${r.escalationId} acknowledged`);
      w.backoffUntil = ctx.clock.now();
      if (w.taskId) setTaskStatus(ctx.db, ctx.run.id, w.taskId, 'running', iso(ctx.clock.now()));
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
      carried: this.carried,
      views: [...this.workers.values()].map((w) => toView(w, now)),
      incidents: this.incidents.list(),
      lastEscalationSeq: this.lastEscalationSeq,
      tasks: countTasks(ctx.db, ctx.run.id),
    };
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    this.pm.close();
  }
}
