import { z } from 'zod';
import type { DaemonContext } from '../daemon-runtime';
import { readEvents } from '../event-log';
import { isAlive } from '../proc';
import { currentBootId } from '../process-identity';
import { DAEMON_STATE_FILES, DaemonHeaderSchema } from '../state-files';

// run.resumed says the run goes on after session-state-manager restarted,
// and lists the work that was lost meanwhile: the workers worker-sentry
// found dead at its own start (worker.lost) and requeued. The daemons start
// side by side under PM2, so it is recorded once the sentry has started too:
// at session-state-manager's first tick that sees the sentry's state written
// by a sentry whose start came after this daemon's previous instance last
// wrote its own, or that sees the sentry never stopped. If the sentry does
// not come up in time, run.resumed is recorded all the same and says so.

/** What session-state-manager's state file keeps for its next start. */
export const ResumeMarkSchema = DaemonHeaderSchema.extend({
  lastSeq: z.number().int().nullable().optional(),
  bootId: z.string().optional(),
});

export interface PendingResume {
  previousPid: number;
  /** The last seq the previous instance had seen: a sentry start after it belongs to this restart. */
  sinceSeq: number;
  bootChanged: boolean;
  /** By when the sentry must have started; after it, run.resumed is recorded without it. */
  dueBy: number;
}

const SENTRY_WAIT_MIN_MS = 30_000;
const SENTRY_WAIT_TICKS = 10;

export function pendingResume(ctx: DaemonContext, now: number): PendingResume | null {
  const prev = ctx.state.read(DAEMON_STATE_FILES['session-state-manager'], ResumeMarkSchema);
  if (!prev.ok || prev.value.runId !== ctx.run.id) return null;
  return {
    previousPid: prev.value.pid,
    sinceSeq: prev.value.lastSeq ?? 0,
    bootChanged: prev.value.bootId !== undefined && prev.value.bootId !== currentBootId(),
    dueBy: now + Math.max(SENTRY_WAIT_MIN_MS, SENTRY_WAIT_TICKS * ctx.config.tickMs),
  };
}

type SentryStart = { kind: 'wait' } | { kind: 'unchanged' } | { kind: 'restarted'; startSeq: number };

/** Where worker-sentry stands relative to this restart. */
function sentryStart(ctx: DaemonContext, r: PendingResume): SentryStart {
  const header = ctx.state.read(DAEMON_STATE_FILES['worker-sentry'], DaemonHeaderSchema);
  if (!header.ok || header.value.runId !== ctx.run.id) return { kind: 'wait' };
  const pid = header.value.pid;
  const started = readEvents(ctx.db, { kindPrefix: 'daemon.started', target: 'daemon:worker-sentry' }).filter(
    (e) => e.data.pid === pid,
  );
  const startSeq = started.at(-1)?.seq;
  if (startSeq === undefined || !isAlive(pid)) return { kind: 'wait' };
  if (startSeq > r.sinceSeq) return { kind: 'restarted', startSeq };
  // The header names a live sentry that started before this restart: it never stopped (a pid from before a reboot is not it).
  return r.bootChanged ? { kind: 'wait' } : { kind: 'unchanged' };
}

/** Records run.resumed when it is due; true once it is recorded. */
export function recordResume(ctx: DaemonContext, r: PendingResume, startedAt: string, now: number): boolean {
  const s = sentryStart(ctx, r);
  if (s.kind === 'wait' && now < r.dueBy) return false;
  const lost =
    s.kind === 'unchanged'
      ? []
      : readEvents(ctx.db, { kindPrefix: 'worker.lost', sinceSeq: s.kind === 'restarted' ? s.startSeq : r.sinceSeq });
  const requeued = lost.map((e) => ({
    workerId: e.target.slice('worker:'.length),
    taskId: e.data.taskId ?? null,
    attempt: e.data.attempt ?? null,
  }));
  const what = requeued.length ? `; ${requeued.length} lost worker(s) requeued` : '';
  ctx.log.append({
    kind: 'run.resumed',
    target: `run:${ctx.run.id}`,
    data: {
      previousPid: r.previousPid,
      startedAt,
      bootChanged: r.bootChanged,
      requeued,
      ...(s.kind === 'wait' ? { sentryStarted: false } : {}),
      message: `run ${ctx.run.id} resumed after a restart of session-state-manager${r.bootChanged ? ' (the machine rebooted)' : ''}${what}${s.kind === 'wait' ? '; worker-sentry had not started' : ''}`,
    },
  });
  return true;
}
