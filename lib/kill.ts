import { isAlive, isStopped } from './proc';
import type { Clock } from './clock';

// Ending a worker for good: its whole process group gets SIGTERM, and SIGCONT
// too (a SIGSTOPped process would otherwise hold SIGTERM until resumed), then
// SIGKILL after the grace period. Verified gone, never assumed.

export interface KillResult {
  gone: boolean;
  escalated: boolean;
  elapsedMs: number;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ESRCH: the group is already gone, which is what we want.
    if (code !== 'ESRCH') throw err;
  }
}

async function waitGone(pid: number, deadline: number, clock: Clock): Promise<boolean> {
  while (clock.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise<void>((resolve) => clock.setTimeout(resolve, 25));
  }
  return !isAlive(pid);
}

export async function killProcessGroup(pid: number, pgid: number, graceMs: number, clock: Clock): Promise<KillResult> {
  const started = clock.now();
  if (!isAlive(pid)) return { gone: true, escalated: false, elapsedMs: 0 };
  const wasStopped = isStopped(pid);
  signalGroup(pgid, 'SIGTERM');
  if (wasStopped) signalGroup(pgid, 'SIGCONT');
  if (await waitGone(pid, started + graceMs, clock)) return { gone: true, escalated: false, elapsedMs: clock.now() - started };
  signalGroup(pgid, 'SIGKILL');
  const gone = await waitGone(pid, clock.now() + 5000, clock);
  return { gone, escalated: true, elapsedMs: clock.now() - started };
}
