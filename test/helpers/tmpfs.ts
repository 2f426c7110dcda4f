import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

// A small tmpfs the test mounts and fills, to meet a full disk for real.
// Mounting needs root; without it the caller skips with the reason.

/** Why a tmpfs cannot be mounted here, or null when it can. */
export function tmpfsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = fs.mkdtempSync('/tmp/swarm-tmpfs-probe-');
  try {
    const r = mountTmpfs(probe, '1m');
    if (r) return `cannot mount a tmpfs: ${r}`;
    unmount(probe);
    return null;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

/** Mounts a tmpfs of `size` (mount's units: 64m) at `dir`, 0700; the error text, or null. */
export function mountTmpfs(dir: string, size: string): string | null {
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? null : (r.stderr || r.error?.message || `exit ${r.status}`).trim();
}

export function unmount(dir: string): void {
  // Lazy: a process still holding a file there (a daemon being killed) does not keep the mount.
  spawnSync('umount', ['-l', dir]);
}

/** Writes zeros into `file` until the disk has about `leaveBytes` free, or is full (leaveBytes 0). */
export function fillDisk(file: string, leaveBytes: number): void {
  const chunk = Buffer.alloc(64 * 1024);
  const fd = fs.openSync(file, 'a');
  try {
    for (;;) {
      const s = fs.statfsSync(path.dirname(file));
      const free = s.bavail * s.bsize;
      if (free <= leaveBytes) return;
      try {
        fs.writeSync(fd, chunk, 0, Math.min(chunk.length, Math.max(4096, free - leaveBytes)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return;
        throw err;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

export const freeBytes = (dir: string): number => {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
};
