import fs from 'node:fs';

// Free space where Swarm writes. Near a full disk every write may fail
// half-way, so the daemons stop short of it: below HOLD_BELOW_BYTES on the
// state folder's disk a daemon holds its ticks (daemon-runtime.ts) instead
// of starting work it could not record, and the watchdog has raised
// detect.disk_low long before, at `watchdog.diskMinFree` (disk-watch.ts).

/** Below this much free space on the state folder's disk, daemons hold their ticks. */
export const HOLD_BELOW_BYTES = 4 * 1024 * 1024;

export interface DiskFree {
  dir: string;
  /** What an unprivileged writer may still use (statfs's bavail). */
  freeBytes: number;
  totalBytes: number;
}

/** The free space of the file system holding `dir`; null when it cannot be read (the folder is gone). */
export function diskFree(dir: string): DiskFree | null {
  try {
    const s = fs.statfsSync(dir);
    return { dir, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch {
    // A folder not made yet has no disk to speak of: the caller says so, or asks again later.
    return null;
  }
}

/** A write that failed for want of space: the file system's ENOSPC or EDQUOT, or SQLite's SQLITE_FULL. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}
