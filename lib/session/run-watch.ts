import { Action, type ActionDeps } from '../actions/action';
import { iso } from '../clock';
import type { DaemonContext } from '../daemon-runtime';
import { formatAge } from '../duration';
import { requestLaneFill } from '../worker/requests';
import type { Snapshot } from '../snapshot';
import { queuedTasks } from '../task-queue';
import { stepEpisode, type Episode } from './run-episode';
import { raiseEscalation, resolveEscalation, resolvedEscalationIds } from '../escalations';

// The run as a whole sitting still, which no per-worker check sees: work
// queued with no worker live (a utilization lane on a machine busy with
// other programs holds it for ever), or nothing progressing anywhere. As the
// backtest swarm's session manager did, session-state-manager detects it,
// launches one queued task past the utilization gate, and calls a person if
// it lasts; the escalation is resolved by itself when the run moves again.

export type RunCheck = 'no_workers' | 'run_stalled';
const CHECKS: readonly RunCheck[] = ['no_workers', 'run_stalled'];
const LIVE = ['starting', 'running', 'stale'];

export class RunWatch {
  private readonly episodes = new Map<RunCheck, Episode>();
  private readonly escalations = new Map<RunCheck, number>();
  private readonly incidents = new Map<RunCheck, number>();
  private noWorkersSince: number | null = null;
  private workSince: number | null = null;
  private completed: number | null = null;
  private lastCompletionAt: number | null = null;
  private recovered = false;

  constructor(private readonly actionDeps: (ctx: DaemonContext) => ActionDeps) {}

  async tick(ctx: DaemonContext, snap: Snapshot, runDone: boolean, now: number): Promise<void> {
    if (!this.recovered) this.recover(ctx, now);
    const idle = runDone || snap.run?.paused === true;
    const live = snap.workers.filter((w) => LIVE.includes(w.status));
    if (this.completed !== null && snap.tasks.completed > this.completed) this.lastCompletionAt = now;
    this.completed = snap.tasks.completed;

    const noWorkers = !idle && snap.tasks.queued > 0 && live.length === 0;
    this.noWorkersSince = noWorkers ? (this.noWorkersSince ?? now) : null;
    const work = !idle && (snap.tasks.queued > 0 || snap.tasks.running > 0 || live.length > 0);
    this.workSince = work ? (this.workSince ?? now) : null;
    const lastProgress = this.lastProgressAt(ctx, snap);
    const quiet = {
      no_workers: this.noWorkersSince,
      run_stalled: this.workSince === null ? null : Math.max(this.workSince, lastProgress ?? -Infinity),
    };

    for (const check of CHECKS) {
      const afterMs = check === 'no_workers' ? ctx.config.run.noWorkersAfterMs : ctx.config.run.stallAfterMs;
      const prev = this.episodes.get(check) ?? null;
      const { next, output } = stepEpisode(prev, quiet[check], afterMs, now);
      if ((prev?.state ?? 'none') !== (next?.state ?? 'none'))
        ctx.logger.info(
          { check, from: prev?.state ?? 'none', to: next?.state ?? 'none', output },
          'run check transition',
        );
      if (next) this.episodes.set(check, next);
      else this.episodes.delete(check);
      const quietForMs = now - (quiet[check] ?? now);
      if (output === 'detect')
        await this.detect(
          ctx,
          check,
          snap,
          live.map((w) => w.id),
          quietForMs,
          lastProgress,
        );
      else if (output === 'escalate')
        this.escalate(
          ctx,
          check,
          `${this.describe(check, quietForMs)}, and launching past the utilization gate did not move it`,
        );
      else if (output === 'clear') this.clear(ctx, check);
    }
  }

  /** Progress anywhere: a progress file that advanced (the output log, for a job without one), or a task that completed. */
  private lastProgressAt(ctx: DaemonContext, snap: Snapshot): number | null {
    let last = this.lastCompletionAt;
    for (const w of snap.workers) {
      const at = ctx.config.jobs[w.job]?.progress ? w.lastProgressAt : w.lastOutputAt;
      if (at !== null) last = Math.max(last ?? -Infinity, Date.parse(at));
    }
    return last;
  }

  private describe(check: RunCheck, quietForMs: number): string {
    return check === 'no_workers'
      ? `work queued and no worker live for ${formatAge(quietForMs)}`
      : `no task progressed or completed for ${formatAge(quietForMs)}`;
  }

  private async detect(
    ctx: DaemonContext,
    check: RunCheck,
    snap: Snapshot,
    live: string[],
    quietForMs: number,
    lastProgress: number | null,
  ): Promise<void> {
    const what = this.describe(check, quietForMs);
    const lane = this.laneToForce(ctx, snap);
    const d = ctx.log.append({
      kind: `detect.${check}`,
      target: `run:${ctx.run.id}`,
      severity: 'warn',
      data: {
        class: check,
        quietForMs,
        queued: snap.tasks.queued,
        running: snap.tasks.running,
        liveWorkers: live,
        lastProgressAt: lastProgress === null ? null : iso(lastProgress),
        lanes: snap.lanes.map((l) => ({ name: l.name, busy: l.busy, slots: l.slots, starved: l.starved !== null })),
        forceLane: lane,
        message: lane
          ? `${what}: launching a task on lane ${lane} past the utilization gate`
          : `${what}, and no lane has both a queued task and a free slot`,
      },
    });
    this.incidents.set(check, d.seq);
    if (!lane) {
      // Nothing to launch: waiting for the next period would only delay the person.
      const ep = this.episodes.get(check);
      if (ep && ep.state === 'detected') this.episodes.set(check, { ...ep, state: 'escalated' });
      return this.escalate(
        ctx,
        check,
        `${what}; no lane has both a queued task and a free slot${live.length ? ` (live: ${live.join(', ')})` : ''}`,
      );
    }
    const a = await Action.propose(this.actionDeps(ctx), {
      type: 'launch_worker',
      target: `lane:${lane}`,
      priority: 'recovery',
      reason: `${check}: ${what}; launch one queued task past the utilization gate`,
      incidentId: d.seq,
      data: { count: 1, forced: true },
    });
    if (a.granted) requestLaneFill(ctx.db, lane, 1, a.id, 'session-state-manager');
  }

  /** The first lane, in config order, with a task ready to start and a slot free. */
  private laneToForce(ctx: DaemonContext, snap: Snapshot): string | null {
    for (const l of snap.lanes) {
      if (l.busy < l.slots && queuedTasks(ctx.db, ctx.run.id, l.name, 1).length > 0) return l.name;
    }
    return null;
  }

  private escalate(ctx: DaemonContext, check: RunCheck, reason: string): void {
    if (this.escalations.has(check)) return;
    const e = raiseEscalation(ctx.log, {
      target: `run:${ctx.run.id}`,
      reason,
      incidentId: this.incidents.get(check) ?? null,
      data: { class: check },
    });
    this.escalations.set(check, e.seq);
  }

  private clear(ctx: DaemonContext, check: RunCheck): void {
    const escalationId = this.escalations.get(check);
    this.escalations.delete(check);
    this.incidents.delete(check);
    if (escalationId === undefined) return;
    const what =
      check === 'no_workers'
        ? 'a worker is live again, or nothing is queued'
        : 'a task progressed or completed, or the run has no work left';
    resolveEscalation(ctx.log, {
      target: `run:${ctx.run.id}`,
      escalationId,
      by: 'session-state-manager',
      data: { class: check },
      message: `escalation ${escalationId} resolved: ${what}`,
    });
  }

  /**
   * Escalations this manager raised before it restarted and no one has
   * resolved: they are resolved when their condition clears, as if raised now.
   */
  private recover(ctx: DaemonContext, now: number): void {
    this.recovered = true;
    const resolved = resolvedEscalationIds(ctx.db);
    const rows = ctx.db
      .prepare<[string], { seq: number; cls: string }>(
        "SELECT seq, json_extract(data, '$.class') AS cls FROM events WHERE kind = 'escalation.raised' AND target = ? AND json_extract(data, '$.class') IN ('no_workers', 'run_stalled')",
      )
      .all(`run:${ctx.run.id}`)
      .filter((r) => !resolved.has(r.seq));
    for (const r of rows) {
      const check = r.cls as RunCheck;
      this.escalations.set(check, r.seq);
      this.episodes.set(check, { state: 'escalated', quietSince: now, detectedAt: now });
    }
  }

  view(): Record<string, unknown> {
    return Object.fromEntries(
      [...this.episodes].map(([check, ep]) => [check, { ...ep, escalationId: this.escalations.get(check) ?? null }]),
    );
  }
}
