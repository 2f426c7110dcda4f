import type { ActionDeps } from '../actions/action';
import type { CompiledJob } from '../config/config';
import type { DaemonContext } from '../daemon-runtime';
import type { FailureClass, Target } from '../event-kinds';
import type { RuleAction } from './classify';
import type { FailureToRemedy, InFlight, WorkerRecord } from '../worker/record';

/**
 * What worker-sentry's helpers (lane filling, manual commands, the field
 * loops) may do to its workers. They hold this narrow face of the sentry,
 * never the sentry itself, so every change to a worker still goes through
 * the sentry's own transitions, actions and incident book.
 */
export interface SentryHost {
  readonly workers: Map<string, WorkerRecord>;
  /** Attempt and restart counts of tasks sent back to the queue, for when they start again. */
  readonly requeuedCounts: Record<string, { attempt: number; restarts: number }>;
  actionDeps(ctx: DaemonContext): ActionDeps;
  move(ctx: DaemonContext, w: WorkerRecord, to: WorkerRecord['status'], reason: string): void;
  /** The in-flight setter (lib/worker/lifecycle.ts setInFlight): an illegal move is refused and logged. */
  setInFlight(ctx: DaemonContext, w: WorkerRecord, next: InFlight): void;
  act(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob, f: FailureToRemedy, now: number): Promise<void>;
  remediate(
    ctx: DaemonContext,
    w: WorkerRecord,
    job: CompiledJob,
    cls: FailureClass,
    ruleAction: RuleAction,
    evidence: Record<string, unknown>,
    now: number,
  ): Promise<void>;
  finishPending(
    ctx: DaemonContext,
    w: WorkerRecord,
    outcome: 'verified' | 'failed',
    evidence: Record<string, unknown>,
  ): void;
  openIncident(w: WorkerRecord, seq: number, cls: FailureClass, target: Target, now: number): void;
  closeIncidents(w: WorkerRecord, status: 'resolved' | 'escalated', now: number): void;
  raiseEscalation(ctx: DaemonContext, w: WorkerRecord, reason: string, incidentId: number | null): void;
  stopProcess(ctx: DaemonContext, w: WorkerRecord, job: CompiledJob): Promise<void>;
}
