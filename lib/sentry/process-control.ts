import type { DaemonContext } from '../daemon-runtime';
import { killProcessGroup } from '../kill';
import { workerIdentity, type WorkerRecord } from '../worker/record';
import { readWorkerPid } from './worker-pid';

// worker-sentry's hands on a worker's processes: learning its pid as far as
// the kernel vouches for it, and ending its process group, never a process
// it cannot vouch for (each refusal recorded once per attempt and reason).

export class ProcessControl {
  /** Workers whose process group is being ended now: not judged while it goes. */
  readonly stopping = new Set<string>();
  /**
   * The attempt of each worker's last stop that this sentry began. A record that says
   * `stopping` without one was left by a sentry that died mid-stop: its
   * successor finishes the stop (the SIGKILL after the grace was never sent).
   */
  private readonly begun = new Map<string, number>();
  /** Signal refusals already recorded, by worker, attempt and reason. */
  private readonly refusals = new Set<string>();

  beginStop(w: WorkerRecord): void {
    this.stopping.add(w.id);
    this.begun.set(w.id, w.attempt);
  }

  /** The record says a stop is under way that no stop of this sentry's accounts for. */
  stopLeftUnfinished(w: WorkerRecord): boolean {
    return w.inFlight.kind === 'stopping' && this.begun.get(w.id) !== w.attempt;
  }

  /** Ends the worker's process group if it is still the one the kernel vouched for; returns why not, if it refused. */
  async endGroup(ctx: DaemonContext, w: WorkerRecord, graceMs: number): Promise<string | null> {
    const id = workerIdentity(w);
    const res = id
      ? await killProcessGroup(id, graceMs, ctx.clock)
      : { refused: 'the kernel never confirmed this pid as the worker Swarm started' };
    if (res.refused === null) ctx.logger.info({ worker: w.id, ...res }, 'worker process group ended');
    else this.refuseSignal(ctx, w, { pid: w.pid, pgid: w.pgid, shimPid: w.shimPid }, res.refused);
    return res.refused;
  }

  learnPid(ctx: DaemonContext, w: WorkerRecord, dir: string): void {
    const r = readWorkerPid(dir, w.id);
    if (r.kind === 'vouched' && (w.pid === null || w.pid === r.fields.pid)) Object.assign(w, r.fields);
    else if (r.kind === 'gone' && w.pid === null) Object.assign(w, r.fields);
    else if (r.kind === 'refused') this.refuseSignal(ctx, w, r.reported, r.reason);
  }

  /** Recorded once per worker attempt and reason: Swarm will not signal a process it cannot vouch for. */
  private refuseSignal(
    ctx: DaemonContext,
    w: WorkerRecord,
    reported: Record<string, number | null>,
    reason: string,
  ): void {
    const key = `${w.id}:${w.attempt}:${reason}`;
    if (this.refusals.has(key)) return;
    this.refusals.add(key);
    ctx.log.append({
      kind: 'worker.signal_refused',
      target: `worker:${w.id}`,
      severity: 'error',
      data: { ...reported, attempt: w.attempt, reason, message: `not signalled: ${reason}` },
    });
  }
}
