import { iso } from '../clock';
import type { DaemonContext } from '../daemon-runtime';
import { doomedTasks, setTaskStatus } from '../task-queue';

// "Run B after A": a queued task whose dependency failed for good
// (quarantined, or failed) can never start. It fails at once with class
// dependency_failed, and so do its own dependents in turn, so nothing is
// left waiting for ever and the run can complete.

/** Fails every queued task with a dependency that failed for good; returns how many failed. */
export function failDoomedDependents(ctx: DaemonContext): number {
  let failed = 0;
  // Each round fails one layer of dependents; a chain as long as the queue ends within it.
  for (let round = 0; round < 10_000; round++) {
    const doomed = doomedTasks(ctx.db, ctx.run.id);
    if (doomed.length === 0) break;
    for (const { task, dependency, dependencyStatus } of doomed) {
      const message = `task ${task.id} cannot run: it is after ${dependency}, which is ${dependencyStatus}`;
      const d = ctx.log.append({
        kind: 'detect.dependency_failed',
        target: `task:${task.id}`,
        severity: 'warn',
        data: { class: 'dependency_failed', dependency, dependencyStatus, message },
      });
      setTaskStatus(ctx.db, ctx.run.id, task.id, 'failed', iso(ctx.clock.now()));
      ctx.log.append({
        kind: 'task.failed',
        target: `task:${task.id}`,
        severity: 'warn',
        data: { class: 'dependency_failed', dependency, incidentId: d.seq, message },
      });
      failed += 1;
    }
  }
  return failed;
}
