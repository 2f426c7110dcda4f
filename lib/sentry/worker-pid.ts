import { vouchForWorker } from '../process-identity';
import { readPid } from '../worker/files';
import type { WorkerRecord } from '../worker/record';

// The pid a worker's shim reported in pid.json, believed only as far as the
// kernel confirms it (lib/process-identity.ts): the worker can write that
// file too.

export type PidReading =
  /** No pid.json yet. */
  | { kind: 'none' }
  /** Confirmed: these fields may be copied onto the worker's record. */
  | { kind: 'vouched'; fields: Pick<WorkerRecord, 'pid' | 'pgid' | 'shimPid' | 'identity'> }
  /** The processes had ended before they could be checked: the pid is kept for the record, never signalled. */
  | { kind: 'gone'; fields: Pick<WorkerRecord, 'pid' | 'pgid' | 'shimPid' | 'identity'> }
  /** pid.json names processes that are not this worker's: ignored, and the refusal recorded. */
  | { kind: 'refused'; reason: string; reported: { pid: number; pgid: number; shimPid: number } };

export function readWorkerPid(dir: string, workerId: string): PidReading {
  const p = readPid(dir);
  if (!p) return { kind: 'none' };
  const v = vouchForWorker(p, workerId);
  if (v.ok) {
    return {
      kind: 'vouched',
      fields: {
        pid: p.pid,
        pgid: p.pgid,
        shimPid: p.shimPid,
        identity: { startTicks: v.worker.startTicks, shimStartTicks: v.shim.startTicks, bootId: v.worker.bootId },
      },
    };
  }
  if (v.gone && p.pid > 1 && p.pgid === p.pid)
    return { kind: 'gone', fields: { pid: p.pid, pgid: p.pgid, shimPid: p.shimPid, identity: null } };
  return { kind: 'refused', reason: v.reason, reported: { pid: p.pid, pgid: p.pgid, shimPid: p.shimPid } };
}
