import path from 'node:path';
import { interpolate, type CompiledConfig, type CompiledJob } from '../config/config';
import { CLOCK_TICKS_PER_S, type TreeUsageSampler } from '../proc';
import { progressFileFor } from '../worker/files';
import { exists, fileSize, readProgress, scanForMarker } from '../worker/read';
import { readProgressFields } from '../worker/progress-fields';
import { trackMetric } from './plateau';
import type { WorkerRecord } from '../worker/record';

// What the sentry learns about a live worker each tick, written into its
// record: usage of its process tree, progress, log growth, the startup
// marker and artifacts. Judging those facts is detect.ts's job.

/** CPU and memory of the worker's whole process tree. */
export function sampleUsage(sampler: TreeUsageSampler, w: WorkerRecord, now: number): void {
  const usage = sampler.usage(w.pid as number, now);
  if (!usage) return;
  if (w.cpuTicks !== null && w.cpuSampledAt !== null && now > w.cpuSampledAt) {
    w.cpuPct =
      Math.round(((usage.cpuTicks - w.cpuTicks) / CLOCK_TICKS_PER_S / ((now - w.cpuSampledAt) / 1000)) * 1000) / 10;
  }
  w.cpuTicks = usage.cpuTicks;
  w.cpuSampledAt = now;
  w.memBytes = usage.rssBytes;
}

/** The worker's progress and log clocks moved on by `heldMs`: a pause in watching is not a pause in its work. */
export function holdClocks(w: WorkerRecord, heldMs: number, now: number): void {
  const on = (t: number | null) => (t === null ? null : Math.min(now, t + heldMs));
  w.lastProgressAt = on(w.lastProgressAt);
  w.logChangedAt = on(w.logChangedAt);
  w.startupSeenAt = on(w.startupSeenAt);
}

/** Progress, log growth, the startup marker and artifacts. */
export function observeFiles(
  config: CompiledConfig,
  job: CompiledJob,
  w: WorkerRecord,
  dir: string,
  now: number,
  warn: ProgressWarning,
): { progressResumed: boolean } {
  let progressResumed = false;
  const progress = readProgress(progressFileFor(config, job, w));
  if (progress && progress.marker !== w.progressMarker) {
    const firstSight = w.progressMarker === null && w.lastProgressAt === null && !w.progressAdvancedSinceLaunch;
    w.progressMarker = progress.marker;
    // A marker already there at launch is the last attempt's: it proves nothing about this one.
    if (!(firstSight && w.launchedAt !== null && progress.mtimeMs < w.launchedAt)) {
      w.lastProgressAt = now;
      w.progressAdvancedSinceLaunch = true;
      progressResumed = true;
      const metric = progress.json?.metric;
      if (job.plateau && typeof metric === 'number' && Number.isFinite(metric))
        w.plateau = trackMetric(w.plateau, job.plateau, metric, now);
      if (progress.json) noteProgressFields(w, progress.json, now, warn);
    }
  }
  const logFile = path.join(dir, 'output.log');
  const size = fileSize(logFile);
  if (size !== null && size !== w.logSize) {
    // Finding an empty log for the first time is not output: a silent worker must not look busy.
    if (w.logSize !== null || size > 0) w.logChangedAt = now;
    w.logSize = size;
  }
  if (job.startup && !w.startupSeen) {
    const scan = scanForMarker(logFile, w.logOffset, job.startup.marker);
    w.logOffset = scan.offset;
    if (scan.found) Object.assign(w, { startupSeen: true, startupSeenAt: now });
  }
  artifactPaths(job, w).forEach((p, i) => {
    if (!w.artifactsSeen[i] && exists(p)) w.artifactsSeen[i] = true;
  });
  return { progressResumed };
}

/** Told once per worker attempt when its progress JSON has a field Swarm cannot use. */
export type ProgressWarning = (w: WorkerRecord, badFields: string[]) => void;

function noteProgressFields(w: WorkerRecord, json: Record<string, unknown>, now: number, warn: ProgressWarning): void {
  const { fields, bad } = readProgressFields(json);
  if (bad.length && !w.progressWarned) {
    w.progressWarned = true;
    warn(w, bad);
  }
  w.progress = Object.keys(fields).length ? fields : null;
  if (fields.iteration !== undefined && w.progressStart === null)
    w.progressStart = { iteration: fields.iteration, at: now };
}

export function artifactPaths(job: CompiledJob, w: WorkerRecord): string[] {
  return job.artifacts.map((a) =>
    interpolate(a.pathTemplate, { taskId: w.taskId ?? '', workerId: w.id, attempt: w.attempt }),
  );
}
