import fs from 'node:fs';
import path from 'node:path';
import type { CompiledConfig } from '../config/config';
import type { DaemonContext } from '../daemon-runtime';
import { diskFree, type DiskFree } from '../disk-space';
import { raiseEscalation, resolveEscalation, resolvedEscalationIds } from '../escalations';
import type { Target } from '../event-kinds';

// The watchdog's look at free space where Swarm and its workers write: the
// state folder, the checkpoints, and each slurm lane's shared folder. Below
// `watchdog.diskMinFree` it records detect.disk_low and calls a person at
// once (Swarm cannot make room: what to delete is a person's call), while
// there is still room to record it; the call is withdrawn once the disk has
// a tenth more than the minimum free again. Daemons hold their ticks much
// later, at the edge (lib/disk-space.ts). One escalation per file system,
// found again in the log after a restart.

export interface WatchedDisk {
  /** The folder named in events: the first watched folder on this file system. */
  dir: string;
  what: string;
}

/** The folders to watch, one per file system (by device); folders not made yet are skipped. */
export function watchedDisks(config: Pick<CompiledConfig, 'stateDir' | 'lanes'>): WatchedDisk[] {
  const folders: WatchedDisk[] = [
    { dir: config.stateDir, what: 'the state folder' },
    { dir: path.join(config.stateDir, 'checkpoints'), what: 'the checkpoints' },
  ];
  for (const [name, lane] of Object.entries(config.lanes))
    if (lane.slurm) folders.push({ dir: lane.slurm.sharedDir, what: `slurm lane ${name}'s shared folder` });
  const seen = new Set<number>();
  const out: WatchedDisk[] = [];
  for (const f of folders) {
    let dev: number;
    try {
      dev = fs.statSync(f.dir).dev;
    } catch {
      // Not made yet (no checkpoint so far): nothing on it to protect.
      continue;
    }
    if (seen.has(dev)) continue;
    seen.add(dev);
    out.push(f);
  }
  return out;
}

const targetOf = (dir: string): Target => `state:disk:${dir}`;
const mib = (b: number) => `${Math.round(b / 1048576)}MiB`;

export class DiskWatch {
  /** Open disk_low escalations, by target. */
  private readonly open = new Map<Target, number>();
  private last: (DiskFree & { low: boolean })[] = [];

  constructor(private readonly read: (dir: string) => DiskFree | null = diskFree) {}

  /** The open disk_low escalations of an earlier watchdog: resolved by this one when the disk has room again. */
  recover(ctx: DaemonContext): void {
    const resolved = resolvedEscalationIds(ctx.db);
    const rows = ctx.db
      .prepare<[], { seq: number; target: string }>(
        "SELECT seq, target FROM events WHERE kind = 'escalation.raised' AND json_extract(data, '$.class') = 'disk_low' ORDER BY seq",
      )
      .all();
    for (const r of rows) if (!resolved.has(r.seq)) this.open.set(r.target as Target, r.seq);
  }

  check(ctx: DaemonContext): void {
    const minFree = ctx.config.watchdog.diskMinFreeBytes;
    this.last = [];
    for (const d of watchedDisks(ctx.config)) {
      const free = this.read(d.dir);
      if (!free) continue;
      const target = targetOf(d.dir);
      const escalation = this.open.get(target);
      const low = free.freeBytes < (escalation === undefined ? minFree : minFree * 1.1);
      this.last.push({ ...free, low });
      if (low && escalation === undefined) {
        const detect = ctx.log.append({
          kind: 'detect.disk_low',
          target,
          severity: 'error',
          data: {
            class: 'disk_low',
            dir: d.dir,
            what: d.what,
            freeBytes: free.freeBytes,
            totalBytes: free.totalBytes,
            minFreeBytes: minFree,
            message: `${d.what} (${d.dir}) has ${mib(free.freeBytes)} free, under the ${mib(minFree)} minimum`,
          },
        });
        const e = raiseEscalation(ctx.log, {
          target,
          reason: `${mib(free.freeBytes)} free on the disk of ${d.what} (${d.dir}): make room before it fills, or Swarm holds its ticks and workers cannot write`,
          incidentId: detect.seq,
          data: { class: 'disk_low', dir: d.dir, freeBytes: free.freeBytes },
        });
        this.open.set(target, e.seq);
      } else if (!low && escalation !== undefined) {
        this.open.delete(target);
        // A person may have acked it already.
        if (resolvedEscalationIds(ctx.db).has(escalation)) continue;
        resolveEscalation(ctx.log, {
          target,
          escalationId: escalation,
          by: 'watchdog',
          message: `${d.what} (${d.dir}) has ${mib(free.freeBytes)} free again`,
          data: { freeBytes: free.freeBytes },
        });
      }
    }
  }

  view(): { dir: string; freeBytes: number; totalBytes: number; low: boolean }[] {
    return this.last.map((d) => ({ dir: d.dir, freeBytes: d.freeBytes, totalBytes: d.totalBytes, low: d.low }));
  }
}
