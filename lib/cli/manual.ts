import { systemClock } from '../clock';
import { UsageError } from '../errors';
import { NAME_PATTERN } from '../config/primitives';
import { ackEscalation, requestWorkerOp, setPaused } from '../manual-actions';
import { reopenRun } from '../run-registry';
import { enqueueTask, getTask, taskKeys } from '../task-queue';
import { workerIdClash, workerIdOwners } from '../worker-ids';
import { cliConfig, hasState, openWriter, printJson, type GlobalOptions } from './cli-context';

// Manual actions: a person's word, recorded as source swarmctl, going
// through the same grant and lease as the daemons' own.

const nameRe = new RegExp(NAME_PATTERN);

/** --priority as an integer, or a usage error naming it. */
function parsePriority(raw: string | undefined): number {
  if (raw === undefined) return 0;
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || Math.abs(n) > 1_000_000)
    throw new UsageError(`--priority "${raw}": expected a whole number from -1000000 to 1000000`);
  return n;
}

export function submitCommand(
  job: string,
  args: string[],
  opts: GlobalOptions & { id?: string; after?: string[]; priority?: string },
): number {
  // Everything the config alone can refuse is refused before the state folder or a run is made.
  const config = cliConfig(opts);
  const jobCfg = config.jobs[job];
  if (!jobCfg)
    throw new UsageError(`unknown job "${job}"; the config ${config.file} has: ${Object.keys(config.jobs).join(', ')}`);
  const id = opts.id ?? `${job}-${systemClock.now().toString(36)}`;
  if (!nameRe.test(id)) throw new UsageError(`--id "${id}" must match ${NAME_PATTERN}`);
  const after = [...new Set(opts.after ?? [])];
  const priority = parsePriority(opts.priority);
  // A new task can close no cycle but one through itself: the tasks it waits for do not wait for it.
  if (after.includes(id)) throw new UsageError(`--after ${id}: a task cannot wait for itself (a cycle: ${id} → ${id})`);
  const configClash = workerIdClash(workerIdOwners({ jobs: config.jobs, tasks: config.queue }), job, id);
  if (configClash) throw new UsageError(`task "${id}" of job ${job} is refused: ${configClash}`);
  const w = openWriter(opts);
  try {
    if (getTask(w.db, w.run.id, id)) throw new UsageError(`a task "${id}" already exists in run ${w.run.id}`);
    const clash = workerIdClash(workerIdOwners({ jobs: config.jobs, tasks: taskKeys(w.db, w.run.id) }), job, id);
    if (clash) throw new UsageError(`task "${id}" of job ${job} is refused: ${clash}`);
    const unknown = after.filter((dep) => !getTask(w.db, w.run.id, dep));
    if (unknown.length) throw new UsageError(`--after ${unknown.join(', ')}: no such task in run ${w.run.id}`);
    enqueueTask(w.db, {
      runId: w.run.id,
      id,
      job,
      args,
      lane: jobCfg.lane,
      queuedAt: new Date().toISOString(),
      after,
      priority,
    });
    if (reopenRun(w.db, w.run.id)) {
      w.log.append({
        kind: 'run.resumed',
        target: `run:${w.run.id}`,
        data: { reason: 'task submitted', taskId: id, message: `run ${w.run.id} reopened: task ${id} submitted` },
      });
    }
    const e = w.log.append({
      kind: 'task.queued',
      target: `task:${id}`,
      data: { job, lane: jobCfg.lane, args, after, priority, from: 'swarmctl', message: `task ${id} queued (${job})` },
    });
    if (opts.json) printJson({ id, job, lane: jobCfg.lane, after, priority, seq: e.seq });
    else process.stdout.write(`${id}\n`);
    return 0;
  } finally {
    w.close();
  }
}

export async function workerCommand(op: 'restart' | 'stop', workerId: string, opts: GlobalOptions): Promise<number> {
  if (!nameRe.test(workerId)) throw new UsageError(`worker id "${workerId}" must match ${NAME_PATTERN}`);
  const config = cliConfig(opts);
  if (!hasState(config))
    throw new UsageError(`no worker "${workerId}": no swarm has run with state folder ${config.stateDir}`);
  const w = openWriter(opts);
  try {
    const r = await requestWorkerOp(w, systemClock, 'swarmctl', op, workerId);
    if (!r.granted) {
      if (opts.json) printJson({ actionId: r.actionId, granted: false });
      else process.stderr.write(`${op} of ${workerId} denied (see swarmctl events --target worker:${workerId})\n`);
      return 1;
    }
    if (opts.json) printJson({ actionId: r.actionId, granted: true });
    else
      process.stdout.write(
        `${op} of ${workerId} granted as action ${r.actionId}; worker-sentry carries it out on its next tick\n`,
      );
    return 0;
  } finally {
    w.close();
  }
}

export function pauseCommand(paused: boolean, opts: GlobalOptions): number {
  const w = openWriter(opts);
  try {
    setPaused(w, paused, 'swarmctl');
    if (opts.json) printJson({ paused });
    else process.stdout.write(paused ? 'paused: only safety actions will run\n' : 'resumed\n');
    return 0;
  } finally {
    w.close();
  }
}

export function ackCommand(idText: string, opts: GlobalOptions): number {
  if (!/^\d+$/.test(idText)) throw new UsageError(`ESCALATION_ID must be a number, got "${idText}"`);
  const id = Number(idText);
  const config = cliConfig(opts);
  if (!hasState(config))
    throw new UsageError(`no escalation ${id}: no swarm has run with state folder ${config.stateDir}`);
  const w = openWriter(opts);
  try {
    const r = ackEscalation(w, id, process.env.USER ?? 'a person');
    if (r.kind === 'unknown') throw new UsageError(`no escalation ${id}; see \`swarmctl query --json\` .escalations`);
    if (r.kind === 'already') {
      if (opts.json) printJson({ id, status: 'resolved', already: true });
      else process.stdout.write(`escalation ${id} was already resolved\n`);
      return 0;
    }
    if (opts.json) printJson({ id, status: 'resolved' });
    else process.stdout.write(`escalation ${id} resolved; ${r.target} may run again\n`);
    return 0;
  } finally {
    w.close();
  }
}
