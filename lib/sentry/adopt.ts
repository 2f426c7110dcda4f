import type { DaemonContext } from '../daemon-runtime';
import { readEvents } from '../event-log';
import { isAlive } from '../proc';
import { listWorkerDirs, readExit, readPid, readSlurmJob, readSpec } from '../worker/files';
import { readWorkerPid } from './worker-pid';
import { newSlurmJob, newWorkerRecord, type WorkerRecord } from '../worker/record';

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
  /** Beside a valid state file, whose records already hold every handled exit: only what still runs. */
  aliveOnly?: boolean;
  /** The run whose slurm jobs are adopted. */
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
    if (spec.slurm) {
      if (!job || job.attempt !== spec.attempt || spec.env.SWARM_RUN_ID !== opts.runId) continue;
      if (opts.aliveOnly && exited) continue;
    } else {
      const reported = readPid(dir);
      const alive = Boolean(reported && (isAlive(reported.pid) || isAlive(reported.shimPid)));
      // Beside no state file, a worker of this run that ended with its shim and left no exit is adopted too:
      // it was lost while Swarm was down, and the sentry's start requeues it (lost.ts).
      const lost = !exited && !alive && reported !== null && spec.env.SWARM_RUN_ID === opts.runId;
      if (opts.aliveOnly ? !alive || exited : !exited && !alive && !lost) continue;
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

/**
 * A sentry killed between starting a worker and recording it leaves a worker
 * that runs with no `worker.launched`: the folder says which attempt it is,
 * and the log says whether it was recorded. Recorded here, once, on adoption,
 * so every start of a worker is in the log.
 */
export function recordUnloggedLaunch(ctx: DaemonContext, w: WorkerRecord): void {
  const target = `worker:${w.id}` as const;
  const logged = readEvents(ctx.db, { kindPrefix: 'worker.launched', target }).some(
    (e) => e.data.attempt === w.attempt,
  );
  if (logged) return;
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
