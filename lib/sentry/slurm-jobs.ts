import path from 'node:path';
import type { FSWatcher } from 'chokidar';
import { iso } from '../clock';
import type { CompiledConfig } from '../config/config';
import type { DaemonContext } from '../daemon-runtime';
import { formatDuration } from '../duration';
import { errorMessage } from '../errors';
import { jobActive, slurmEnd, type SlurmEnd, type SlurmJob } from '../slurm/jobs';
import type { Slurm } from '../slurm/slurm-cli';
import { readExit, readPid, type ExitRecord } from '../worker/files';
import type { WorkerRecord } from '../worker/record';

// worker-sentry's side of a slurm lane. Its workers are batch jobs on other
// machines, so what a pid tells of a local worker, SLURM tells here: one
// `squeue --json` a tick for every job, read into each worker's record. A
// job is ended through scancel, never a signal from this machine. The
// shared folder is polled (chokidar), since a file written on a compute node
// over NFS gives the head node no inotify event.

/** What a slurm worker's job says this tick, for the sentry to act on. */
export type SlurmReading =
  /** squeue did not answer this tick: nothing is judged. */
  | { kind: 'unknown' }
  /** Queued by SLURM; `stuck` once it has waited past the lane's pendingAfter. */
  | { kind: 'pending'; reason: string; stuck: boolean }
  /** Running on its node: its progress and log are judged as a local worker's. */
  | { kind: 'running' }
  /** Between states: ending (its exit file not yet visible on the shared folder), or its shim not yet started: wait. */
  | { kind: 'ending' }
  /** Ended: the shim's exit record (or SLURM's, when the shim could write none) and what SLURM's state means. */
  | { kind: 'ended'; exit: ExitRecord; end: SlurmEnd | null };

/** How long a job SLURM calls ended may take to show its exit.json on the shared folder, at least. */
const EXIT_FILE_GRACE_MS = 10_000;
/** Past the worker's grace, how long the shim's own SIGKILL and SLURM's report of the end get before scancel. */
const STOP_MARGIN_MS = 5_000;

/** The evidence of pending_stuck, once per attempt, for a job that has waited past its lane's pendingAfter. */
export function pendingStuck(
  w: WorkerRecord,
  r: Extract<SlurmReading, { kind: 'pending' }>,
  now: number,
): Record<string, unknown> | null {
  const s = w.slurm;
  if (!s || !r.stuck || w.detectedThisAttempt.includes('pending_stuck')) return null;
  const pendingMs = now - s.submittedAt;
  return {
    jobId: s.jobId,
    slurmReason: r.reason,
    pendingMs,
    message: `SLURM job ${s.jobId} pending for ${formatDuration(Math.round(pendingMs / 1000) * 1000)} (Reason=${r.reason})`,
  };
}

export class SlurmJobs {
  /** This tick's squeue, or null when it failed. */
  private listed: Map<string, SlurmJob> | null = new Map();
  private failing: string | null = null;
  private watcher: FSWatcher | null = null;
  /** Settles once the watch has taken its first look at the shared folders: a change after that wakes the tick. */
  watching: Promise<void> = Promise.resolve();

  constructor(readonly slurm: Slurm) {}

  /** One squeue for every slurm worker's job, at the start of a tick. */
  async refresh(ctx: DaemonContext, workers: Iterable<WorkerRecord>): Promise<void> {
    const ids = [...workers].flatMap((w) => (w.slurm && jobActive(w.slurm.state) ? [w.slurm.jobId] : []));
    if (ids.length === 0) {
      this.listed = new Map();
      return;
    }
    try {
      this.listed = await this.slurm.jobs(ids);
      if (this.failing) ctx.logger.info({ was: this.failing }, 'slurm answers again');
      this.failing = null;
    } catch (err) {
      this.listed = null;
      // Said once per kind of failure, not every tick; the workers are judged again once it answers.
      const msg = errorMessage(err);
      if (this.failing !== msg) ctx.logger.error({ err: msg, jobs: ids.length }, 'cannot read slurm jobs');
      this.failing = msg;
    }
  }

  /** Reads the worker's job and files into its record, and says what they mean. */
  read(config: CompiledConfig, w: WorkerRecord, dir: string, now: number): SlurmReading {
    const s = w.slurm;
    if (!s || this.listed === null) return { kind: 'unknown' };
    const job = this.listed.get(s.jobId);
    if (job) Object.assign(s, { state: job.state, reason: job.reason, node: job.node ?? s.node });
    // Not listed by squeue (nor sacct): gone from slurmctld's memory, so it ended long enough ago.
    else if (jobActive(s.state)) Object.assign(s, { state: 'GONE', reason: 'no longer listed by squeue or sacct' });
    // Files written by another job (an earlier one of this worker, lost with its node) are not this job's word.
    const ours = <T extends { jobId?: string | null }>(f: T | null): T | null =>
      f && (f.jobId ?? s.jobId) === s.jobId ? f : null;
    const pid = ours(readPid(dir));
    if (pid && w.pid === null) {
      // For query's sake only: the pid is on the compute node, never signalled from here (identity stays null).
      // The attempt's clocks (startup, progress, artifacts) start here, when the shim runs, not while the job queued.
      Object.assign(w, { pid: pid.pid, pgid: pid.pgid, shimPid: pid.shimPid, launchedAt: now });
      if (pid.node) s.node = pid.node;
    }
    let exit: ExitRecord | null = ours(readExit(dir));
    if (jobActive(s.state)) {
      if (s.state === 'PENDING' || s.state === 'SUBMITTED' || s.state === 'UNKNOWN') {
        const pendingAfter = config.lanes[w.lane]?.slurm?.pendingAfterMs ?? Infinity;
        return { kind: 'pending', reason: s.reason, stuck: now - s.submittedAt > pendingAfter };
      }
      // Its exit is written but SLURM has yet to say how the job ended (TIMEOUT, NODE_FAIL…). Until its shim
      // has said it runs, nothing the folder shows is this attempt's (a job lost with its node may still write).
      return exit || w.pid === null ? { kind: 'ending' } : { kind: 'running' };
    }
    // Swarm's own scancel is no one else's cancel.
    const meant = slurmEnd(s.state);
    const end = s.cancelRequested && meant?.kind === 'cancelled' ? null : meant;
    if (!exit) {
      // A shim that ended on its own wrote exit.json; give the shared folder time to show it.
      s.endSeenAt ??= now;
      const grace = Math.max(EXIT_FILE_GRACE_MS, 3 * (config.lanes[w.lane]?.slurm?.pollMs ?? 0));
      if (end === null && !s.cancelRequested && now - s.endSeenAt < grace) return { kind: 'ending' };
      exit = {
        exitCode: job?.exitCode ?? null,
        signal: job?.signal ?? null,
        endedAt: iso(now),
        error: `SLURM job ${s.jobId} ended ${s.state} (${s.reason}) without an exit record`,
        ...(s.cancelRequested ? { stoppedBySwarm: true } : {}),
      };
    }
    return { kind: 'ended', exit, end };
  }

  /**
   * Ends the worker's job. A running shim is told first (scancel
   * --signal=TERM --batch) and ends its worker's group, SIGCONT included,
   * SIGKILL after the worker's grace, as under PM2; a job that has not
   * started is cancelled outright. Nothing here waits for the end, which the
   * next ticks read from squeue: a tick never blocks on the cluster.
   */
  async stop(ctx: DaemonContext, w: WorkerRecord): Promise<void> {
    const s = w.slurm;
    if (!s || !jobActive(s.state)) return;
    const now = ctx.clock.now();
    try {
      if (w.pid !== null && s.state !== 'PENDING') {
        await this.slurm.terminate(s.jobId);
        s.termSentAt = now;
      } else {
        await this.slurm.cancel(s.jobId);
        s.termSentAt = null;
      }
      s.cancelRequested = true;
    } catch (err) {
      // Not asked, so not marked: the remedy that wanted the stop asks again while the job still runs.
      ctx.logger.error({ worker: w.id, job: s.jobId, err: errorMessage(err) }, 'scancel failed');
    }
  }

  /**
   * A job still there past the shim's grace (the shim itself hung, or the node
   * too slow to answer) is cancelled: SLURM ends every process of it.
   */
  async finishStop(ctx: DaemonContext, w: WorkerRecord, graceMs: number, now: number): Promise<void> {
    const s = w.slurm;
    if (!s || s.termSentAt === null || !jobActive(s.state) || now - s.termSentAt < graceMs + STOP_MARGIN_MS) return;
    ctx.logger.warn({ worker: w.id, job: s.jobId, graceMs }, 'slurm job outlived its grace: scancel');
    try {
      await this.slurm.cancel(s.jobId);
      s.termSentAt = null;
    } catch (err) {
      ctx.logger.error({ worker: w.id, job: s.jobId, err: errorMessage(err) }, 'scancel failed');
    }
  }

  /** Polls each slurm lane's shared folder for exit, pid and progress files, and wakes the tick on a change. */
  watch(ctx: DaemonContext, config: CompiledConfig, poke: () => void): void {
    const lanes = Object.values(config.lanes).flatMap((l) => (l.slurm ? [l.slurm] : []));
    this.watcher
      ?.close()
      .catch((err: unknown) => ctx.logger.warn({ err: errorMessage(err) }, 'closing the shared folder watch failed'));
    this.watcher = null;
    if (lanes.length === 0) return;
    const interval = Math.min(...lanes.map((l) => l.pollMs));
    const roots = [...new Set(lanes.map((l) => l.sharedDir))];
    const wanted = /(^|[/\\])(exit|pid|progress)\.json$/;
    // chokidar is loaded only for a slurm lane: every other sentry would carry it (~3 MiB) unused.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on use, as said above
    const { watch } = require('chokidar') as typeof import('chokidar');
    this.watcher = watch(
      roots.flatMap((r) => [path.join(r, 'workers'), path.join(r, 'checkpoints')]),
      { usePolling: true, interval, binaryInterval: interval, ignoreInitial: true, depth: 2 },
    );
    const w = this.watcher;
    this.watching = new Promise((resolve) => w.once('ready', () => resolve()));
    this.watcher.on('all', (_event, file) => {
      if (wanted.test(file)) poke();
    });
    this.watcher.on('error', (err) =>
      ctx.logger.warn({ err: errorMessage(err) }, 'shared folder watch failed; ticks carry on'),
    );
  }

  async close(): Promise<void> {
    await this.watcher?.close();
    this.watcher = null;
  }
}
