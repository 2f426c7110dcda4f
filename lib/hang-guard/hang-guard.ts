import path from 'node:path';
import { Action, actorDeps, type ActionDeps, type Grantor } from '../actions/action';
import { writeJsonAtomic } from '../atomic-file';
import type { DaemonBehavior, DaemonContext } from '../daemon-runtime';
import { daemonRepairFor, type DaemonRepair } from '../daemon-repair';
import { formatDuration } from '../duration';
import { errorMessage } from '../errors';
import { killProcessGroup } from '../kill';
import { overrunning, PgProbe, type ActiveQuery } from '../pg-probe';
import { getControl, setControl } from '../run-registry';
import type { ProcessManager } from '../process-manager';
import { progressFileFor } from '../worker/files';
import { readProgress } from '../worker/read';
import { workerDirOf } from '../worker/files';
import { SentryBodySchema, workerAlive, workerIdentity, type WorkerRecord } from '../worker/record';
import { LIVE_STATUSES } from '../worker/lifecycle';
import { DAEMON_STATE_FILES } from '../state-files';

// hang-guard: owns operations that run too long. A worker past its job's
// maxRuntime, or past the deadline of an operation it declared in its
// progress JSON ({"operation": {"name", "deadline"}}), is ended: its whole
// process group gets SIGTERM (and SIGCONT), then SIGKILL after killGrace,
// and is verified gone. It also watches the watchdog, so the watchdog is not
// the one thing nobody watches.

/** How long a terminated backend may take to leave pg_stat_activity before the action counts as failed. */
const TERMINATE_VERIFY_MS = 3_000;

interface Overrun {
  message: string;
  evidence: Record<string, unknown>;
}

export function findOverrun(
  w: WorkerRecord,
  maxRuntimeMs: number | null,
  progress: Record<string, unknown> | null,
  now: number,
): Overrun | null {
  if (maxRuntimeMs !== null && w.launchedAt !== null && now - w.launchedAt > maxRuntimeMs) {
    const ran = now - w.launchedAt;
    return {
      message: `ran ${formatDuration(Math.round(ran / 1000) * 1000)}, past maxRuntime ${formatDuration(maxRuntimeMs)}`,
      evidence: { limit: 'maxRuntime', maxRuntimeMs, runtimeMs: ran },
    };
  }
  const op = progress?.operation as { name?: unknown; deadline?: unknown } | undefined;
  if (op && typeof op === 'object' && typeof op.deadline === 'string') {
    const deadline = Date.parse(op.deadline);
    if (Number.isFinite(deadline) && now > deadline) {
      const name = typeof op.name === 'string' ? op.name : 'operation';
      return {
        message: `operation "${name}" overran its deadline ${op.deadline} by ${formatDuration(Math.round((now - deadline) / 1000) * 1000)}`,
        evidence: { limit: 'operation', operation: name, deadline: op.deadline, overrunMs: now - deadline },
      };
    }
  }
  return null;
}

export class HangGuard implements DaemonBehavior {
  private repair: DaemonRepair | null = null;
  /** worker id:pid already ended, so one overrun is acted on once. */
  private readonly handled = new Set<string>();
  private kills = 0;

  private readonly actionDeps: (ctx: DaemonContext) => ActionDeps;

  constructor(
    private readonly pm: ProcessManager,
    makeGrantor: (ctx: DaemonContext) => Grantor,
  ) {
    this.actionDeps = actorDeps('hang-guard', makeGrantor);
  }

  private lastPgCheckAt = 0;
  private pgError: string | null = null;
  /** Active queries past maxQuery at the last reading of pg_stat_activity, in scope or not (before any was ended), Swarm's own not counted. */
  private longQueries: { count: number; checkedAt: string } | null = null;
  private readonly pgEnded = new Set<number>();
  private pgProbe: PgProbe | null = null;
  /** The PostgreSQL check under way: it runs beside the ticks, so a server slow to answer never holds one up. */
  private pgCheck: Promise<void> | null = null;

  start(ctx: DaemonContext): void {
    this.repair = daemonRepairFor(ctx, this.pm, () => this.actionDeps(ctx));
    if (ctx.config.postgres) this.pgProbe = new PgProbe(ctx.config.postgres, ctx.logger);
  }

  /**
   * A clean start is due: at the first check of a run ('run-start'), or at
   * the first check after a task.started not yet cleaned for ('task-start').
   * Returns how to mark it done once the queries have been read.
   */
  private cleanDue(ctx: DaemonContext, now: number): (() => void) | null {
    const on = ctx.config.postgres?.cleanStart?.on;
    if (on === 'run-start') {
      const key = `pg.cleanStart:${ctx.run.id}`;
      return getControl(ctx.db, key) === null ? () => setControl(ctx.db, key, new Date(now).toISOString()) : null;
    }
    if (on !== 'task-start') return null;
    const key = `pg.cleanStart.taskSeq:${ctx.run.id}`;
    const latest =
      ctx.db
        .prepare<[string], { m: number | null }>(
          "SELECT max(seq) AS m FROM events WHERE run_id = ? AND kind = 'task.started'",
        )
        .get(ctx.run.id)?.m ?? 0;
    return latest > Number(getControl(ctx.db, key) ?? 0) ? () => setControl(ctx.db, key, String(latest)) : null;
  }

  /** Long database queries past maxQuery; on a clean start, leftovers past cleanStart.olderThan too. */
  private async checkPostgres(ctx: DaemonContext, now: number): Promise<void> {
    const pg = ctx.config.postgres;
    const probe = this.pgProbe;
    if (!pg || !probe || now - this.lastPgCheckAt < pg.everyMs) return;
    this.lastPgCheckAt = now;
    const markClean = this.cleanDue(ctx, now);
    const clean = markClean !== null;
    let qs: ActiveQuery[];
    try {
      qs = await probe.activeQueries();
      this.pgError = null;
    } catch (err) {
      if (this.pgError !== errorMessage(err)) ctx.logger.warn({ err: errorMessage(err) }, 'postgres probe failed');
      this.pgError = errorMessage(err);
      return;
    }
    markClean?.();
    this.longQueries = {
      count: qs.filter((q) => q.runningMs > pg.maxQueryMs).length,
      checkedAt: new Date(now).toISOString(),
    };
    for (const q of overrunning(qs, pg, clean)) {
      if (this.pgEnded.has(q.pid)) continue;
      this.pgEnded.add(q.pid);
      const target = `query:${q.pid}` as const;
      const byClean =
        clean && pg.cleanStart !== null && q.runningMs >= pg.cleanStart.olderThanMs ? pg.cleanStart.on : false;
      const why = byClean
        ? `clean start (${byClean}): a leftover query active ${Math.round(q.runningMs / 1000)}s, at least cleanStart.olderThan ${formatDuration(pg.cleanStart?.olderThanMs ?? 0)}`
        : `running ${Math.round(q.runningMs / 1000)}s, past maxQuery ${formatDuration(pg.maxQueryMs)}`;
      const d = ctx.log.append({
        kind: 'detect.long_query',
        target,
        severity: 'warn',
        data: {
          class: 'long_query',
          pid: q.pid,
          applicationName: q.applicationName,
          usename: q.usename,
          datname: q.datname,
          runningMs: q.runningMs,
          queryFingerprint: q.fingerprint,
          cleanStart: byClean,
          message: `${q.applicationName || 'query'} pid ${q.pid}: ${why}`,
        },
      });
      const action = await Action.propose(this.actionDeps(ctx), {
        type: 'terminate_query',
        target,
        priority: 'safety',
        reason: why,
        incidentId: d.seq,
      });
      if (!action.granted) {
        this.pgEnded.delete(q.pid);
        continue;
      }
      action.started({ pid: q.pid });
      try {
        const r = await probe.terminateVerified(q.pid, TERMINATE_VERIFY_MS, ctx.clock);
        if (r.gone)
          action.verified({
            message: `backend ${q.pid} terminated`,
            pid: q.pid,
            signalSent: r.sent,
            elapsedMs: r.elapsedMs,
          });
        else
          action.failed({
            message: `backend ${q.pid} ${r.sent ? `still present ${r.elapsedMs}ms after pg_terminate_backend` : 'could not be signalled by pg_terminate_backend'}`,
            pid: q.pid,
            signalSent: r.sent,
          });
      } catch (err) {
        action.failed({ message: `pg_terminate_backend(${q.pid}) failed: ${errorMessage(err)}` });
      }
    }
  }

  async tick(ctx: DaemonContext): Promise<void> {
    const now = ctx.clock.now();
    try {
      await this.repair?.check(['watchdog'], now);
    } catch (err) {
      ctx.logger.error({ err: errorMessage(err) }, 'watchdog check failed');
    }
    if (!this.pgCheck) {
      this.pgCheck = this.checkPostgres(ctx, now)
        .catch((err: unknown) => ctx.logger.error({ err: errorMessage(err) }, 'postgres check failed'))
        .finally(() => (this.pgCheck = null));
    }
    const sentry = ctx.state.read(DAEMON_STATE_FILES['worker-sentry'], SentryBodySchema);
    if (!sentry.ok) return;
    for (const w of sentry.value.workers) {
      const job = ctx.config.jobs[w.job];
      // A slurm worker runs on another machine, under SLURM's --time (its job's maxRuntime): TIMEOUT is its overrun.
      if (!job || w.slurm || !LIVE_STATUSES.includes(w.status) || w.pid === null || !workerAlive(w)) continue;
      const key = `${w.id}:${w.pid}`;
      if (this.handled.has(key)) continue;
      const progress = readProgress(progressFileFor(ctx.config, job, w))?.json ?? null;
      const overrun = findOverrun(w, job.maxRuntimeMs, progress, now);
      if (overrun) {
        this.handled.add(key);
        await this.end(ctx, w, overrun);
      }
    }
  }

  private async end(ctx: DaemonContext, w: WorkerRecord, o: Overrun): Promise<void> {
    const target = `worker:${w.id}` as const;
    const d = ctx.log.append({
      kind: 'detect.runtime_exceeded',
      target,
      severity: 'warn',
      data: { class: 'runtime_exceeded', pid: w.pid, attempt: w.attempt, ...o.evidence, message: o.message },
    });
    // A runaway process is a safety matter: it goes ahead in pause mode and with the breaker open.
    const action = await Action.propose(this.actionDeps(ctx), {
      type: 'stop_worker',
      target,
      priority: 'safety',
      reason: o.message,
      incidentId: d.seq,
    });
    if (!action.granted) {
      this.handled.delete(`${w.id}:${w.pid}`);
      return;
    }
    const pid = w.pid as number;
    action.started({ pid, pgid: w.pgid });
    // Only a process the sentry's record says the kernel vouched for is signalled (lib/process-identity.ts).
    const id = workerIdentity(w);
    if (!id)
      return action.failed({
        message: `not signalled: the kernel never confirmed pid ${pid} as the worker Swarm started`,
        pid,
      });
    writeJsonAtomic(path.join(workerDirOf(ctx.config, w), 'kill-reason.json'), {
      class: 'runtime_exceeded',
      incidentId: d.seq,
      actionId: action.id,
      pid,
      by: 'hang-guard',
      message: o.message,
    });
    const r = await killProcessGroup(id, ctx.config.hangGuard.killGraceMs, ctx.clock);
    if (r.refused) return action.failed({ message: `not signalled: ${r.refused}`, pid });
    this.kills += 1;
    if (r.gone)
      action.verified({
        message: `process group ${w.pgid ?? pid} gone after ${r.elapsedMs}ms${r.escalated ? ' (SIGKILL needed)' : ''}`,
        escalated: r.escalated,
        elapsedMs: r.elapsedMs,
      });
    else action.failed({ message: `pid ${pid} still alive after SIGKILL`, elapsedMs: r.elapsedMs });
  }

  snapshot(): Record<string, unknown> {
    return {
      kills: this.kills,
      watching: ['watchdog'],
      postgres: {
        error: this.pgError,
        ended: [...this.pgEnded],
        longQueries: this.longQueries?.count ?? null,
        checkedAt: this.longQueries?.checkedAt ?? null,
      },
      ...(this.repair?.snapshot() ?? {}),
    };
  }

  /** The watchdog's heartbeat could not be written while ticks were held for a full disk. */
  afterHold(): void {
    this.repair?.forgetSightings();
  }

  async stop(): Promise<void> {
    this.pm.close();
    await this.pgCheck;
    await this.pgProbe?.close();
  }
}
