import type { CompiledConfig, CompiledJob } from '../config/config';
import { readProgressFields } from '../worker/progress-fields';
import { progressFileFor } from '../worker/files';
import { readProgress } from '../worker/read';
import type { WorkerRecord } from '../worker/record';

// A task's result, as its worker last reported it: the final metric and the
// best, read from the progress JSON when the task completes (the last write
// can come after the last tick looked), for task.completed and `swarmctl
// results`.

export function taskResult(
  config: CompiledConfig,
  job: CompiledJob,
  w: WorkerRecord,
): { metric: number | null; best: number | null } {
  const json = readProgress(progressFileFor(config, job, w))?.json;
  const fields = json ? readProgressFields(json).fields : (w.progress ?? {});
  return { metric: fields.metric ?? null, best: fields.best ?? null };
}
