import path from 'node:path';
import { z } from 'zod';
import { actorDeps, type Grantor } from '../actions/action';
import { appendLine } from '../atomic-file';
import { iso } from '../clock';
import type { DaemonBehavior, DaemonContext, DaemonRuntime } from '../daemon-runtime';
import { errorMessage } from '../errors';
import { completeRun, getRun, latestRun } from '../run-registry';
import { buildRunReport, writeRunReport } from './run-report';
import { Scheduler } from '../schedules/scheduler';
import { RunWatch } from './run-watch';
import { pendingResume, recordResume, type PendingResume } from './run-resume';
import { currentBootId } from '../process-identity';
import { rotateIfOver } from '../rotate';
import { buildSnapshot, type Snapshot } from '../snapshot';
import {
  CONTROL_STATE_FILE,
  ControlStateSchema,
  DAEMON_STATE_FILES,
  SESSION_LATEST_FILE,
  SessionLatestSchema,
  sessionHeartbeatFile,
} from '../state-files';

// session-state-manager: owns the run as a whole. It keeps the run id across
// restarts (run.resumed), writes the session files a person or a resumed
// agent reads first (session_latest.json, one heartbeat line per tick, the
// all-in-one swarm_control_state.json), turns the snapshot into next steps,
// declares the run complete once the queue is done, fires the jobs'
// schedules (lib/schedules/scheduler.ts), and acts when the run as a whole
// sits still (lib/session/run-watch.ts: no_workers, run_stalled).

const HangGuardPgSchema = z.looseObject({
  postgres: z.looseObject({ longQueries: z.number().nullable().optional() }).optional(),
});

export class SessionStateManager implements DaemonBehavior {
  private last: Snapshot | null = null;
  private readonly scheduler: Scheduler;
  private readonly watch: RunWatch;

  constructor(makeGrantor: (ctx: DaemonContext) => Grantor) {
    const deps = actorDeps('session-state-manager', makeGrantor);
    this.scheduler = new Scheduler(deps);
    this.watch = new RunWatch(deps);
  }

  private runtime: DaemonRuntime | null = null;
  /** A restart whose run.resumed waits for worker-sentry's start (run-resume.ts). */
  private resume: PendingResume | null = null;

  start(ctx: DaemonContext, runtime: DaemonRuntime): void {
    this.runtime = runtime;
    this.resume = pendingResume(ctx, ctx.clock.now());
  }

  private completed(ctx: DaemonContext): boolean {
    // Read each time: `swarmctl submit` reopens a completed run.
    return latestRun(ctx.db)?.status === 'completed';
  }

  async tick(ctx: DaemonContext): Promise<void> {
    const now = ctx.clock.now();
    if (this.resume && recordResume(ctx, this.resume, ctx.run.startedAt, now)) this.resume = null;
    // Before the snapshot, so a firing's task counts as queued at once; reopens a run a firing adds to.
    await this.scheduler.tick(ctx, now);
    const snap = buildSnapshot(ctx.config, now);
    this.last = snap;
    // Before completion: the run's own escalation resolved in this tick belongs in the end-of-run report.
    await this.watch.tick(ctx, snap, this.completed(ctx), now);
    this.maybeComplete(ctx, snap, now);
    const latest = {
      runId: ctx.run.id,
      swarm: ctx.config.name,
      status: this.completed(ctx) ? 'completed' : snap.run?.paused ? 'paused' : 'running',
      startedAt: ctx.run.startedAt,
      updatedAt: iso(now),
      tasks: snap.tasks,
      workers: snap.workers.map((w) => ({ id: w.id, status: w.status, attempt: w.attempt })),
      openEscalations: snap.escalations.filter((e) => e.status === 'open').length,
      problems: snap.problems,
      nextSteps: snap.nextSteps,
      lastSeq: snap.events.lastSeq,
      heartbeatFile: sessionHeartbeatFile(ctx.run.id),
    };
    this.runtime?.writeOwnedState(SESSION_LATEST_FILE, latest, SessionLatestSchema);
    this.runtime?.writeOwnedState(CONTROL_STATE_FILE, snap, ControlStateSchema);
    const heartbeat = path.join(ctx.config.stateDir, sessionHeartbeatFile(ctx.run.id));
    try {
      if (rotateIfOver(heartbeat, ctx.config.logs.heartbeatMaxBytes, ctx.config.logs.keep))
        ctx.logger.info({ file: heartbeat, keep: ctx.config.logs.keep }, 'heartbeat rotated');
    } catch (err) {
      // The line is still appended: a heartbeat that grows past its cap beats one that stops.
      ctx.logger.warn({ file: heartbeat, err: errorMessage(err) }, 'heartbeat rotation failed');
    }
    appendLine(
      heartbeat,
      JSON.stringify({
        ts: iso(now),
        runId: ctx.run.id,
        status: latest.status,
        tasks: snap.tasks,
        workers: snap.workers.length,
        lastSeq: snap.events.lastSeq,
        longQueries: this.longQueries(ctx),
      }),
    );
  }

  /** hang-guard's count of long database queries at its last reading; null without postgres or a reading. */
  private longQueries(ctx: DaemonContext): number | null {
    if (!ctx.config.postgres) return null;
    const r = ctx.state.read(DAEMON_STATE_FILES['hang-guard'], HangGuardPgSchema);
    return r.ok ? (r.value.postgres?.longQueries ?? null) : null;
  }

  private maybeComplete(ctx: DaemonContext, snap: Snapshot, now: number): void {
    if (this.completed(ctx)) return;
    // Replicas run for ever, and a schedule fires for ever: such a run is never done.
    const hasReplicas = Object.values(ctx.config.jobs).some((j) => j.replicas > 0 || j.schedule !== null);
    const t = snap.tasks;
    const total = t.queued + t.running + t.completed + t.failed + t.quarantined;
    // Quarantined work waits for a person, so the run is not done until it is acked.
    if (hasReplicas || total === 0 || t.queued > 0 || t.running > 0 || t.quarantined > 0) return;
    if (!completeRun(ctx.db, ctx.run.id, now)) return;
    const report = this.writeReport(ctx);
    ctx.log.append({
      kind: 'run.completed',
      target: `run:${ctx.run.id}`,
      data: {
        tasks: t,
        report,
        message: `run complete: ${t.completed} completed, ${t.failed} failed${report ? `; report in ${report}` : ''}`,
      },
    });
  }

  /** The end-of-run report; a run completes even when it cannot be written (a full disk), and says so. */
  private writeReport(ctx: DaemonContext): string | null {
    const run = getRun(ctx.db, ctx.run.id);
    if (!run) return null;
    try {
      return writeRunReport(ctx.config.stateDir, buildRunReport(ctx.db, run));
    } catch (err) {
      ctx.logger.error({ runId: run.id, err: errorMessage(err) }, 'run report not written');
      return null;
    }
  }

  snapshot(ctx: DaemonContext): Record<string, unknown> {
    return {
      runCompleted: this.completed(ctx),
      nextSteps: this.last?.nextSteps ?? [],
      runChecks: this.watch.view(),
      // For the next start's run.resumed: where this instance had read up to, and on which boot.
      lastSeq: this.last?.events.lastSeq ?? this.resume?.sinceSeq ?? null,
      bootId: currentBootId(),
    };
  }
}
