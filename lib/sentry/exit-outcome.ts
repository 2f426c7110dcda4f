import type { FailureClass } from '../event-kinds';
import type { ExitRecord, KillReason } from '../worker/files';
import type { StopReason } from '../worker/record';
import type { SlurmEnd } from '../slurm/jobs';

// What a worker's exit means, as a pure function of what is known when it is
// seen: why Swarm was ending it (the worker's in-flight `stopping`), the exit itself, whether it is
// a task with a verify guard, and whether another daemon ended it on purpose
// (kill-reason.json for this very pid). The sentry applies the outcome in
// one place (WorkerSentry.onExit); only a plain failure needs the log tail,
// classified there.

/** A failure this many times in a row, with no verified-healthy period between, is crash_loop. */
export const CRASH_LOOP_STREAK = 3;

export type ExitOutcome =
  /** Quarantined while its process still ran (its budget spent on a live failure): nothing follows until `ack`. */
  | { kind: 'quarantined' }
  /** `swarmctl stop`: the worker is stopped, its task held in the queue. */
  | { kind: 'stopped' }
  /** util-controller's requeue: the task goes back to the queue with its checkpoint. */
  | { kind: 'requeued' }
  /** A restart Swarm asked for (the action is already under way): back off, then relaunch. */
  | { kind: 'restart-requested' }
  /** Stopped through PM2 (swarmctl down, pm2 stop): no failure; relaunch at once. */
  | { kind: 'stopped-through-pm2' }
  /** Exit 0 of a task with a verify guard: done only once the guard agrees. */
  | { kind: 'verify' }
  /** Exit 0 of a task (or a task ended because it converged): completed. */
  | { kind: 'completed'; converged: boolean }
  /** Exit 0 of a replica: relaunched after the restart delay, no failure counted. */
  | { kind: 'replica-exited' }
  /** A slurm job the cluster ended (node failure, preemption, a time or memory limit): that class, remedied. */
  | { kind: 'cluster-ended'; cls: 'node_failed' | 'preempted' | 'runtime_exceeded' | 'worker_oom' }
  /** A slurm job cancelled by someone other than Swarm: stopped and recorded, never restarted. */
  | { kind: 'cancelled-outside' }
  /** Ended on purpose by another daemon, which recorded the detection: remedied under its incident. */
  | { kind: 'ended-by'; kill: KillReason }
  /** A failure: classify the exit and remedy it. */
  | { kind: 'failed' };

export interface ExitFacts {
  intent: StopReason | null;
  exit: Pick<ExitRecord, 'exitCode' | 'signal' | 'stoppedBySwarm'>;
  isTask: boolean;
  hasVerify: boolean;
  /** kill-reason.json, when it names the pid that exited. */
  kill: KillReason | null;
  /** For a slurm worker, what SLURM's end state means (lib/slurm/jobs.ts slurmEnd); null otherwise. */
  slurm: SlurmEnd | null;
  /** The worker was quarantined before this exit came. */
  quarantined: boolean;
}

export function exitOutcome(f: ExitFacts): ExitOutcome {
  if (f.quarantined) return { kind: 'quarantined' };
  switch (f.intent) {
    case 'stop':
      return { kind: 'stopped' };
    case 'requeue':
      return { kind: 'requeued' };
    case 'restart':
      return { kind: 'restart-requested' };
    case 'converge':
      // Ended by Swarm because the work is done: its exit is the task's success, whatever the signal.
      if (!f.isTask) return { kind: 'replica-exited' };
      return f.hasVerify ? { kind: 'verify' } : { kind: 'completed', converged: true };
    case null:
      break;
  }
  // Before the shim's word: the shim calls any SIGTERM a stop, and SLURM sends one at a time limit or preemption.
  if (f.slurm?.kind === 'cancelled') return { kind: 'cancelled-outside' };
  if (f.slurm) return { kind: 'cluster-ended', cls: f.slurm.class };
  if (f.exit.stoppedBySwarm) return { kind: 'stopped-through-pm2' };
  if (f.exit.exitCode === 0 && f.exit.signal === null) {
    if (!f.isTask) return { kind: 'replica-exited' };
    return f.hasVerify ? { kind: 'verify' } : { kind: 'completed', converged: false };
  }
  if (f.kill) return { kind: 'ended-by', kill: f.kill };
  return { kind: 'failed' };
}

/** A crash or OOM that makes CRASH_LOOP_STREAK in a row is a crash_loop; any other class stays itself. */
export function loopClass(cls: FailureClass, streakBefore: number): FailureClass {
  return (cls === 'worker_crashed' || cls === 'worker_oom') && streakBefore + 1 >= CRASH_LOOP_STREAK
    ? 'crash_loop'
    : cls;
}
