import type { DaemonContext } from '../daemon-runtime';
import { readEvents } from '../event-log';
import { isAlive } from '../proc';
import { listWorkerDirs, readExit, workerDirOf, workerRoots, readPid, readSlurmJob, readSpec } from '../worker/files';
import { readWorkerPid } from './worker-pid';
import { IDLE, newSlurmJob, newWorkerRecord, type WorkerRecord } from '../worker/record';

// When the sentry's own state file is gone or corrupt, its workers are not:
// each worker folder holds the spec it was launched with and the shim's pid
// and exit files. Rebuild a record for every worker still alive or whose
// exit has not been handled; budgets start afresh, which the note in
// docs/failures.md explains. A pid is adopted only as far as the kernel
// vouches for it (worker-pid.ts): a record without an identity is watched
// for its exit but never signalled.
//
// A slurm lane's worker folder (under its sharedDir) names its batch job
// (slurm-job.json). Whether that job still runs is SLURM's to say, at the
// first tick: it is adopted as UNKNOWN, from this run's folders only, so a
// head node that died and came back carries on with the jobs it left.

export interface AdoptOptions {
  /**
   * Beside a valid state file, the attempt it records of each worker. Only
   * what it does not account for is adopted: a folder whose attempt is newer
   * than its record (a relaunch begun after the file's last write: spec.json
   * is written before PM2 is asked to start anything), and a worker it has no
   * record of that still runs, or that ran and ended with its launch never
   * logged.
   */
  known?: ReadonlyMap<string, number>;
  /** Whether a worker's attempt has its worker.launched; without it, every one is taken to have. */
  logged?: (workerId: string, attempt: number) => boolean;
  /** The run whose workers are adopted. */
  runId: string;
}

export function adoptFromDisk(
  roots: string[],
  laneOf: (job: string) => string | undefined,
  opts: AdoptOptions,
): WorkerRecord[] {
  const out: WorkerRecord[] = [];
  for (const dir of roots.flatMap(listWorkerDirs)) {
    const spec = readSpec(dir);
    if (!spec) continue;
    const lane = laneOf(spec.job);
    if (!lane) continue;
    const exited = readExit(dir) !== null;
    const job = spec.slurm ? readSlurmJob(dir) : null;
    const thisRun = spec.env.SWARM_RUN_ID === opts.runId;
    const knownAttempt = opts.known?.get(spec.workerId);
    const newer = thisRun && knownAttempt !== undefined && spec.attempt > knownAttempt;
    if (spec.slurm) {
      if (!job || job.attempt !== spec.attempt || !thisRun) continue;
      if (opts.known && exited && !newer) continue;
    } else {
      const reported = readPid(dir);
      const alive = Boolean(reported && (isAlive(reported.pid) || isAlive(reported.shimPid)));
      if (opts.known) {
        // No record of it: one that still runs, or one that ran and ended unlogged (a finished worker pruned
        // from the state file has its launch logged).
        const unrecorded =
          knownAttempt === undefined &&
          (exited ? thisRun && opts.logged?.(spec.workerId, spec.attempt) === false : alive);
        if (!newer && !unrecorded) continue;
      } else {
        // Beside no state file, a worker of this run that ended with its shim and left no exit is adopted too:
        // it was lost while Swarm was down, and the sentry's start requeues it (lost.ts).
        const lost = !exited && !alive && reported !== null && thisRun;
        if (!exited && !alive && !lost) continue;
      }
    }
    const w = newWorkerRecord({
      id: spec.workerId,
      job: spec.job,
      taskId: spec.taskId,
      slot: spec.slot,
      lane,
      attempt: spec.attempt,
    });
    Object.assign(w, {
      status: 'running',
      launchedAt: spec.launchedAt,
      startupSeen: true,
      progressAdvancedSinceLaunch: true,
    });
    if (job) {
      w.slurm = newSlurmJob(job.jobId, job.submittedAt, {
        state: 'UNKNOWN',
        reason: 'adopted from its worker folder',
        node: readPid(dir)?.node ?? null,
      });
    } else {
      const pid = readWorkerPid(dir, spec.workerId);
      if (pid.kind === 'vouched' || pid.kind === 'gone') Object.assign(w, pid.fields);
    }
    out.push(w);
  }
  return out;
}

/** Whether the shim of the worker's current attempt has shown itself: a pid reported, or an exit written. */
export function attemptRan(dir: string): boolean {
  return readPid(dir) !== null || readExit(dir) !== null;
}

/**
 * The record of a relaunch the state file never saw, from its folder: the
 * attempt, its pid as far as the kernel vouches for it, when it began.
 */
export function takeNewerAttempt(known: WorkerRecord, w: WorkerRecord): void {
  Object.assign(known, {
    attempt: w.attempt,
    restarts: known.restarts + (w.attempt - known.attempt),
    pid: w.pid,
    pgid: w.pgid,
    shimPid: w.shimPid,
    identity: w.identity,
    slurm: w.slurm,
    launchedAt: w.launchedAt,
    status: 'running',
    inFlight: IDLE,
    startupSeen: true,
    progressAdvancedSinceLaunch: true,
    detectedThisAttempt: [],
  });
}

/** Whether worker.launched is in the log for each worker's attempt. */
export function launchLogged(ctx: DaemonContext): (workerId: string, attempt: number) => boolean {
  return (workerId, attempt) =>
    readEvents(ctx.db, { kindPrefix: 'worker.launched', target: `worker:${workerId}` }).some(
      (e) => e.data.attempt === attempt,
    );
}

/**
 * Beside a valid state file: each launch begun after its last write (the
 * sentry ended mid-tick) is taken up. One whose shim has shown itself is
 * recorded in the log now. The ids of the rest, whose start PM2 may never
 * have been asked for, are returned: the sentry records each once its shim
 * reports, or launches it again if it never does.
 */
export function adoptUnrecorded(
  ctx: DaemonContext,
  workers: Map<string, WorkerRecord>,
  laneOf: (job: string) => string | undefined,
): string[] {
  const known = new Map([...workers.values()].map((w) => [w.id, w.attempt]));
  const opts = { known, logged: launchLogged(ctx), runId: ctx.run.id };
  const unconfirmed: string[] = [];
  for (const w of adoptFromDisk(workerRoots(ctx.config), laneOf, opts)) {
    const record = workers.get(w.id);
    if (record) takeNewerAttempt(record, w);
    else workers.set(w.id, w);
    if (w.slurm || attemptRan(workerDirOf(ctx.config, w))) recordUnloggedLaunch(ctx, w);
    else if (!opts.logged(w.id, w.attempt)) unconfirmed.push(w.id);
  }
  return unconfirmed;
}

/**
 * A sentry killed between starting a worker and recording it leaves a worker
 * that runs with no `worker.launched`: the folder says which attempt it is,
 * and the log says whether it was recorded. Recorded here, once, on adoption,
 * so every start of a worker is in the log.
 */
export function recordUnloggedLaunch(ctx: DaemonContext, w: WorkerRecord): void {
  const target = `worker:${w.id}` as const;
  if (launchLogged(ctx)(w.id, w.attempt)) return;
  ctx.log.append({
    kind: 'worker.launched',
    target,
    data: {
      job: w.job,
      taskId: w.taskId,
      attempt: w.attempt,
      lane: w.lane,
      recordedOnAdoption: true,
      ...(w.slurm ? { slurmJobId: w.slurm.jobId } : {}),
      message: `launched attempt ${w.attempt} of ${w.job} (recorded on adoption: the sentry ended before it could)`,
    },
  });
}
