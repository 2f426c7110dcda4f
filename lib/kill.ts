import { isStopped } from './proc';
import type { Clock } from './clock';
import { groupMismatch, stillRuns, type ProcessIdentity } from './process-identity';

// Ending a worker for good: its whole process group gets SIGTERM, and SIGCONT
// too (a SIGSTOPped process would otherwise hold SIGTERM until resumed), then
// SIGKILL after the grace period. Verified gone, never assumed. Before each
// signal the group's leader must still be the process Swarm recorded
// (lib/process-identity.ts); if it is not, nothing is signalled and the
// refusal is the result.

export interface KillResult {
  gone: boolean;
  escalated: boolean;
  elapsedMs: number;
  /** Why nothing was signalled: the pid is no longer (or never was) the process Swarm started. */
  refused: string | null;
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

/** Gone, or its pid now names another process: either way ours has ended. */
const ended = (id: ProcessIdentity): boolean => !stillRuns(id);

async function waitGone(id: ProcessIdentity, deadline: number, clock: Clock): Promise<boolean> {
  while (clock.now() < deadline) {
    if (ended(id)) return true;
    await new Promise<void>((resolve) => clock.setTimeout(resolve, 25));
  }
  return ended(id);
}

export async function killProcessGroup(id: ProcessIdentity, graceMs: number, clock: Clock): Promise<KillResult> {
  const started = clock.now();
  const refused = groupMismatch(id);
  if (refused) return { gone: false, escalated: false, elapsedMs: 0, refused };
  if (ended(id)) return { gone: true, escalated: false, elapsedMs: 0, refused: null };
  const wasStopped = isStopped(id.pid);
  signalGroup(id.pid, 'SIGTERM');
  if (wasStopped) signalGroup(id.pid, 'SIGCONT');
  if (await waitGone(id, started + graceMs, clock))
    return { gone: true, escalated: false, elapsedMs: clock.now() - started, refused: null };
  // It may have left its group since (setpgid): then -pid is someone else's group.
  const late = groupMismatch(id);
  if (late) return { gone: false, escalated: false, elapsedMs: clock.now() - started, refused: late };
  signalGroup(id.pid, 'SIGKILL');
  const gone = await waitGone(id, clock.now() + 5000, clock);
  return { gone, escalated: true, elapsedMs: clock.now() - started, refused: null };
}
