import { isAlive } from '../proc';
import { listWorkerDirs, readExit, readPid, readSpec } from '../worker/files';
import { readWorkerPid } from './worker-pid';
import { newWorkerRecord, type WorkerRecord } from '../worker/record';

// When the sentry's own state file is gone or corrupt, its workers are not:
// each worker folder holds the spec it was launched with and the shim's pid
// and exit files. Rebuild a record for every worker still alive or whose
// exit has not been handled; budgets start afresh, which the note in
// docs/failures.md explains. A pid is adopted only as far as the kernel
// vouches for it (worker-pid.ts): a record without an identity is watched
// for its exit but never signalled.

export function adoptFromDisk(
  stateDir: string,
  laneOf: (job: string) => string | undefined,
  opts: { aliveOnly?: boolean } = {},
): WorkerRecord[] {
  const out: WorkerRecord[] = [];
  for (const dir of listWorkerDirs(stateDir)) {
    const spec = readSpec(dir);
    if (!spec) continue;
    const reported = readPid(dir);
    const exited = readExit(dir) !== null;
    const alive = Boolean(reported && (isAlive(reported.pid) || isAlive(reported.shimPid)));
    // aliveOnly: beside a valid state file, whose records already hold every handled exit.
    if (opts.aliveOnly ? !alive || exited : !exited && !alive) continue;
    const lane = laneOf(spec.job);
    if (!lane) continue;
    const w = newWorkerRecord({
      id: spec.workerId,
      job: spec.job,
      taskId: spec.taskId,
      slot: spec.slot,
      lane,
      attempt: spec.attempt,
    });
    const pid = readWorkerPid(dir, spec.workerId);
    Object.assign(w, {
      status: 'running',
      launchedAt: spec.launchedAt,
      startupSeen: true,
      progressAdvancedSinceLaunch: true,
      ...(pid.kind === 'vouched' || pid.kind === 'gone' ? pid.fields : {}),
    });
    out.push(w);
  }
  return out;
}
