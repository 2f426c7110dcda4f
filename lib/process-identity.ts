import fs from 'node:fs';
import { liveStat, readProcStat } from './proc';

// Who a pid is, as the kernel says, so Swarm never signals a process it did
// not start. A pid alone is not an identity: pids are reused, and after a
// reboot with the state folder kept every recorded pid names some other
// process. Nor is anything a worker can write: pid.json sits in the worker's
// folder, which the worker can reach (its checkpoint folder's ../..). So a
// reported pid is believed only once the kernel confirms it (the child of
// our shim, leading its own process group), and is signalled only while it
// is still that process: same boot, same start time, pgid === pid > 1.

export interface ProcessIdentity {
  pid: number;
  /** /proc/PID/stat field 22: clock ticks after boot at which it started. */
  startTicks: number;
  bootId: string;
}

let cachedBootId: string | null = null;

export function currentBootId(): string {
  cachedBootId ??= fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}

export function identityOf(pid: number): ProcessIdentity | null {
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const st = readProcStat(pid);
  return st ? { pid, startTicks: st.startTicks, bootId: currentBootId() } : null;
}

/** The recorded process still runs: alive, this boot, the same start time. A reused pid is not it. */
export function stillRuns(id: ProcessIdentity): boolean {
  // One read of /proc: the sentry asks this of every worker and shim each tick.
  if (id.pid <= 0 || id.bootId !== currentBootId()) return false;
  return liveStat(readProcStat(id.pid))?.startTicks === id.startTicks;
}

/**
 * Why the process group led by `id.pid` must not be signalled as the process
 * Swarm recorded, or null when it may be. A process that is gone is no
 * mismatch: there is nothing left to signal.
 */
export function groupMismatch(id: ProcessIdentity): string | null {
  if (!Number.isInteger(id.pid) || id.pid <= 1) return `pid ${id.pid} is never one Swarm starts`;
  if (id.bootId !== currentBootId()) return `pid ${id.pid} was recorded before a reboot`;
  const st = readProcStat(id.pid);
  if (!st) return null;
  if (st.startTicks !== id.startTicks)
    return `pid ${id.pid} is now another process (it started at tick ${st.startTicks}, not ${id.startTicks})`;
  if (st.pgrp !== id.pid) return `pid ${id.pid} does not lead its own process group (pgid ${st.pgrp})`;
  return null;
}

export type Vouched =
  { ok: true; worker: ProcessIdentity; shim: ProcessIdentity } | { ok: false; reason: string; gone: boolean };

/** The environment a process was started with; not its argv, which PM2 rewrites when it sets process.title. */
function startEnv(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/**
 * A worker's pid as its shim reported it (pid.json), checked against the
 * kernel: the shim must have been started for this worker (PM2 starts it
 * with SWARM_WORKER_ID in its environment, which a process cannot change
 * after the fact), and the worker must be its child and lead its own process
 * group. A worker that forged all of that could only point Swarm at
 * processes of its own.
 */
export function vouchForWorker(reported: { pid: number; pgid: number; shimPid: number }, workerId: string): Vouched {
  const { pid, pgid, shimPid } = reported;
  if (!Number.isInteger(pid) || pid <= 1 || pgid !== pid)
    return {
      ok: false,
      gone: false,
      reason: `pid.json names pid ${pid} with pgid ${pgid}: a worker Swarm starts leads its own group, pgid === pid > 1`,
    };
  const worker = readProcStat(pid);
  const shim = identityOf(shimPid);
  if (!worker || !shim) return { ok: false, gone: true, reason: `pid ${pid} or its shim ${shimPid} has already ended` };
  if (!startEnv(shimPid).includes(`SWARM_WORKER_ID=${workerId}`))
    return { ok: false, gone: false, reason: `pid ${shimPid} is not the shim Swarm started for this worker` };
  if (worker.ppid !== shimPid)
    return {
      ok: false,
      gone: false,
      reason: `pid ${pid} is not a child of its shim ${shimPid} (its parent is ${worker.ppid})`,
    };
  if (worker.pgrp !== pid)
    return { ok: false, gone: false, reason: `pid ${pid} does not lead its own process group (pgid ${worker.pgrp})` };
  return { ok: true, worker: { pid, startTicks: worker.startTicks, bootId: shim.bootId }, shim };
}
