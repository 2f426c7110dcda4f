import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from './atomic-file';
import { readProcStat } from './proc';
import { currentBootId } from './process-identity';

// One swarm per state folder. Two swarms on one folder would launch the same
// task into one checkpoint folder and fight over every state file, so the
// folder names its holder: the PM2 daemon that runs the swarm (it outlives
// `swarmctl up`, and every daemon of the swarm is its child), by pid with
// start time and boot, on this host. A second swarm, from another PM2_HOME,
// is refused with that name; a holder that is gone leaves the lock to the
// next one, as a stale pid file would.

export const LOCK_FILE = 'swarm.lock';
const LOCK_READ_LIMIT = 64 * 1024;

const HolderSchema = z.object({
  swarm: z.string(),
  config: z.string(),
  host: z.string(),
  pm2Home: z.string(),
  pm2Pid: z.number().int(),
  pm2StartTicks: z.number(),
  bootId: z.string(),
  since: z.string(),
});
export type LockHolder = z.output<typeof HolderSchema>;

export function readLock(stateDir: string): LockHolder | null {
  let fd: number;
  try {
    fd = fs.openSync(
      path.join(stateDir, LOCK_FILE),
      fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
    );
  } catch {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > LOCK_READ_LIMIT) return null;
    const parsed = HolderSchema.safeParse(JSON.parse(fs.readFileSync(fd, 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    // Garbage in the lock names no holder: the next swarm takes it.
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the PM2 daemon the lock names still runs. On another host Swarm cannot look, so it counts as running. */
export function holderAlive(h: LockHolder): boolean {
  if (h.host !== os.hostname()) return true;
  if (h.bootId !== currentBootId()) return false;
  return readProcStat(h.pm2Pid)?.startTicks === h.pm2StartTicks;
}

export function describeHolder(h: LockHolder): string {
  return `swarm "${h.swarm}" (config ${h.config}) under the PM2 daemon pid ${h.pm2Pid} on ${h.host}, PM2_HOME ${h.pm2Home}, since ${h.since}`;
}

/** Why a swarm under `pm2Home` may not use this state folder, or null when it may. */
export function lockRefusal(stateDir: string, pm2Home: string): string | null {
  const h = readLock(stateDir);
  if (!h || h.pm2Home === pm2Home || !holderAlive(h)) return null;
  return `state folder ${stateDir} is in use by ${describeHolder(h)}; stop that swarm first (swarmctl down with its PM2_HOME), or give this one another stateDir`;
}

/** Names the PM2 daemon `pm2Pid` as the holder; null if that process is not there to name. */
export function takeLock(
  stateDir: string,
  who: { swarm: string; config: string; pm2Home: string; pm2Pid: number },
  now: Date,
): LockHolder | null {
  const st = readProcStat(who.pm2Pid);
  if (!st) return null;
  const holder: LockHolder = {
    ...who,
    host: os.hostname(),
    pm2StartTicks: st.startTicks,
    bootId: currentBootId(),
    since: now.toISOString(),
  };
  writeJsonAtomic(path.join(stateDir, LOCK_FILE), holder);
  return holder;
}

export function releaseLock(stateDir: string, pm2Home: string): void {
  const h = readLock(stateDir);
  if (h && h.pm2Home === pm2Home) fs.rmSync(path.join(stateDir, LOCK_FILE), { force: true });
}
