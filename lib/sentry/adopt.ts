import { isAlive } from '../proc';
import { listWorkerDirs, readExit, readPid, readSpec } from './worker-files';
import { newWorkerRecord, type WorkerRecord } from './worker-record';

// When the sentry's own state file is gone or corrupt, its workers are not:
// each worker folder holds the spec it was launched with and the shim's pid
// and exit files. Rebuild a record for every worker still alive or whose
// exit has not been handled; budgets start afresh, which the note in
// docs/failures.md explains.

export function adoptFromDisk(stateDir: string, laneOf: (job: string) => string | undefined, opts: { aliveOnly?: boolean } = {}): WorkerRecord[] {
  const out: WorkerRecord[] = [];
  for (const dir of listWorkerDirs(stateDir)) {
    const spec = readSpec(dir);
    if (!spec) continue;
    const pid = readPid(dir);
    const exited = readExit(dir) !== null;
    const alive = Boolean(pid && (isAlive(pid.pid) || isAlive(pid.shimPid)));
    // aliveOnly: beside a valid state file, whose records already hold every handled exit.
    if (opts.aliveOnly ? !alive || exited : !exited && !alive) continue;
    const lane = laneOf(spec.job);
    if (!lane) continue;
    const w = newWorkerRecord({ id: spec.workerId, job: spec.job, taskId: spec.taskId, slot: spec.slot, lane, attempt: spec.attempt });
    Object.assign(w, {
      status: 'running', pid: pid?.pid ?? null, pgid: pid?.pgid ?? null, shimPid: pid?.shimPid ?? null, launchedAt: spec.launchedAt,
      backoffUntil: null, startupSeen: true, progressAdvancedSinceLaunch: true,
    });
    out.push(w);
  }
  return out;
}
