import type { CompiledJob } from '../config/config';
import { formatDuration } from '../duration';
import type { FailureClass } from '../event-kinds';
import type { WorkerRecord } from '../worker/record';

// Failures of a worker that is still alive, judged from what the sentry has
// observed. Pure: the sentry feeds it the record, the job and the time.

export interface LiveDetection {
  class: FailureClass;
  message: string;
  evidence: Record<string, unknown>;
}

const ageOf = (since: number | null, fallback: number | null, now: number): number => now - (since ?? fallback ?? now);

export function detectLive(w: WorkerRecord, job: CompiledJob, now: number, artifactPaths: string[]): LiveDetection[] {
  const out: LiveDetection[] = [];
  const sinceLaunch = ageOf(w.launchedAt, null, now);
  if (job.memoryLimitBytes !== null && w.memBytes !== null && w.memBytes > job.memoryLimitBytes) {
    out.push({
      class: 'worker_oom',
      message: `memory ${Math.round(w.memBytes / 1048576)}MiB over the limit ${Math.round(job.memoryLimitBytes / 1048576)}MiB`,
      evidence: { memBytes: w.memBytes, memoryLimitBytes: job.memoryLimitBytes },
    });
  }
  if (job.startup && !w.startupSeen && sinceLaunch > job.startup.withinMs) {
    out.push({
      class: 'startup_gate_missed',
      message: `startup marker "${job.startup.marker}" not seen within ${formatDuration(job.startup.withinMs)}`,
      evidence: { marker: job.startup.marker, withinMs: job.startup.withinMs, sinceLaunchMs: sinceLaunch },
    });
  }
  // A worker still inside its startup gate is judged by the gate, not by progress; once through it, the
  // progress clock starts at the gate (as a liveness probe waits for the startup probe), not at launch.
  const startupPending = job.startup !== null && !w.startupSeen;
  if (job.progress && !startupPending) {
    const age = ageOf(w.lastProgressAt, w.startupSeenAt ?? w.launchedAt, now);
    if (age > job.progress.staleAfterMs) {
      out.push({
        class: 'progress_stale',
        message: `no progress for ${formatDuration(Math.round(age / 1000) * 1000)} (limit ${formatDuration(job.progress.staleAfterMs)})`,
        evidence: { progressAgeMs: age, staleAfterMs: job.progress.staleAfterMs, lastProgressAt: w.lastProgressAt },
      });
    }
  }
  if (job.logStallAfterMs !== null && !startupPending) {
    const age = ageOf(w.logChangedAt, w.launchedAt, now);
    if (age > job.logStallAfterMs) {
      out.push({
        class: 'log_stalled',
        message: `no log output for ${formatDuration(Math.round(age / 1000) * 1000)} (limit ${formatDuration(job.logStallAfterMs)})`,
        evidence: { logAgeMs: age, logStallAfterMs: job.logStallAfterMs },
      });
    }
  }
  job.artifacts.forEach((a, i) => {
    if (!w.artifactsSeen[i] && sinceLaunch > a.withinMs) {
      out.push({
        class: 'artifact_missing',
        message: `artifact ${artifactPaths[i]} missing after ${formatDuration(a.withinMs)}`,
        evidence: { path: artifactPaths[i], withinMs: a.withinMs },
      });
    }
  });
  return out.filter((d) => !w.detectedThisAttempt.includes(d.class));
}

/** Is the current attempt doing what a healthy worker does? Used to verify a restart. */
export function looksHealthy(w: WorkerRecord, job: CompiledJob, now: number, tickMs: number): boolean {
  if (job.startup && !w.startupSeen) return false;
  if (job.progress) return w.progressAdvancedSinceLaunch;
  if (job.startup) return true;
  return w.launchedAt !== null && now - w.launchedAt >= Math.max(2 * tickMs, 2000);
}
