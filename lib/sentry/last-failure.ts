import path from 'node:path';
import { writeJsonAtomic } from '../atomic-file';
import { iso } from '../clock';
import type { DaemonContext } from '../daemon-runtime';
import { errorMessage } from '../errors';
import type { FailureClass } from '../event-kinds';
import { configRedactor } from '../redact';
import { readTail } from '../worker/read';
import { checkpointDirOf, workerDirOf } from '../worker/files';
import type { CompiledConfig } from '../config/config';
import type { WorkerRecord } from '../worker/record';

// What the last attempt learned, handed to the next one, as the optimization
// loop's last_fix.json did: before a worker is relaunched, its checkpoint
// folder gets last-failure.json (SWARM_LAST_FAILURE names it) with the
// failure's class and evidence, the exit, the end of its log and the verify
// guard's output, and every class this task has failed with and how often;
// on stagnation, which one repeated. Secrets are cut out as in the event log.

export const LAST_FAILURE_FILE = 'last-failure.json';
const LOG_TAIL_BYTES = 4096;

export const lastFailurePath = (
  config: Pick<CompiledConfig, 'stateDir' | 'lanes'>,
  w: { id: string; lane: string },
): string => path.join(checkpointDirOf(config, w), LAST_FAILURE_FILE);

export function writeLastFailure(
  ctx: DaemonContext,
  w: WorkerRecord,
  cls: FailureClass,
  evidence: Record<string, unknown>,
  stagnation: { repeated: FailureClass; count: number } | null,
): void {
  const record = {
    workerId: w.id,
    taskId: w.taskId,
    attempt: w.attempt,
    at: iso(ctx.clock.now()),
    class: cls,
    exitCode: evidence.exitCode ?? w.lastExit?.exitCode ?? null,
    signal: evidence.signal ?? w.lastExit?.signal ?? null,
    evidence,
    logTail: readTail(path.join(workerDirOf(ctx.config, w), 'output.log'), LOG_TAIL_BYTES),
    verify: evidence.verify ?? null,
    /** Every class this task has failed with, and how often, over its whole life. */
    tried: w.failureCounts,
    stagnation,
  };
  try {
    writeJsonAtomic(lastFailurePath(ctx.config, w), configRedactor(ctx.config).value(record));
  } catch (err) {
    // The relaunch matters more than the note for it: it goes ahead without one.
    ctx.logger.warn({ worker: w.id, err: errorMessage(err) }, 'cannot write last-failure.json');
  }
}
