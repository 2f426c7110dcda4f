import { SlurmError } from '../errors';
import { spawnBounded } from '../spawn-bounded';
import { parseSacctJson, parseScontrolJobs, parseSqueueJson, type SlurmJob } from './jobs';

// worker-sentry's hands on a SLURM cluster: sbatch, squeue, sacct and
// scancel, each run as argv (never a shell, so never `sbatch --wrap`) under a
// timeout, its machine-readable output parsed. A command that fails, hangs
// or prints nonsense is a SlurmError for the caller to log and retry next
// tick; it never throws anything else.

export interface SubmitRequest {
  /** The batch script: the worker shim, one self-contained Node file (shim-script.ts). */
  script: string;
  /** Its arguments: the spec.json path. */
  args: string[];
  jobName: string;
  partition: string | null;
  /** The lane's own sbatch arguments. */
  extraArgs: string[];
  /** Where SLURM writes the shim's own output. */
  output: string;
  cwd: string;
  /** The job's maxRuntime, as SLURM's --time in minutes, unless the lane sets --time itself. */
  timeLimitMinutes: number | null;
}

/** The narrow face of SLURM that the sentry depends on (tests can drive a real cluster through it too). */
export interface Slurm {
  submit(req: SubmitRequest): Promise<string>;
  /** What SLURM knows of these jobs; a job it no longer lists is missing from the map. */
  jobs(ids: readonly string[]): Promise<Map<string, SlurmJob>>;
  /** `scancel --signal=TERM --batch`: the shim alone is told, and ends the worker's group as it does under PM2. */
  terminate(jobId: string): Promise<void>;
  /** `scancel`: SLURM ends every process of the job (SIGTERM, SIGKILL after KillWait). */
  cancel(jobId: string): Promise<void>;
}

const TIMEOUT_MS = 20_000;
const MAX_BYTES = 32 * 1024 * 1024;

export async function runSlurm(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = TIMEOUT_MS,
): Promise<string> {
  const cmd = argv.slice(0, 2).join(' ');
  const r = await spawnBounded(argv, { env, timeoutMs, maxBytes: MAX_BYTES, onOverflow: 'kill' }).result;
  switch (r.outcome) {
    case 'not-started':
      throw new SlurmError(cmd, `cannot run: ${r.error.message}`);
    case 'timed-out':
      throw new SlurmError(cmd, `no answer in ${timeoutMs}ms`);
    case 'too-big':
      throw new SlurmError(cmd, `printed more than ${MAX_BYTES} bytes`);
    case 'exited':
      if (r.exitCode !== 0)
        throw new SlurmError(cmd, `exit ${r.exitCode ?? r.signal}: ${r.stderr.trim() || r.stdout.toString().trim()}`);
      return r.stdout.toString();
  }
}

const hasTimeArg = (args: string[]) => args.some((a) => a === '-t' || a.startsWith('--time') || /^-t\d/.test(a));

export function sbatchArgv(req: SubmitRequest): string[] {
  return [
    'sbatch',
    '--parsable',
    // Swarm resubmits a failed node's or a preempted job itself, so that it is counted and recorded.
    '--no-requeue',
    `--job-name=${req.jobName}`,
    `--output=${req.output}`,
    `--chdir=${req.cwd}`,
    // The worker's environment is its spec's, as on a local lane; PATH finds node for the shim's #! line.
    '--export=PATH',
    ...(req.partition ? [`--partition=${req.partition}`] : []),
    ...(req.timeLimitMinutes !== null && !hasTimeArg(req.extraArgs) ? [`--time=${req.timeLimitMinutes}`] : []),
    ...req.extraArgs,
    req.script,
    ...req.args,
  ];
}

export class SlurmCli implements Slurm {
  /** Learnt from the first sacct call: without accounting, a job squeue no longer lists is gone for good. */
  private accounting: boolean | null = null;
  /** Learnt from the first squeue call: whether this SLURM prints JSON. */
  private json: boolean | null = null;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  async submit(req: SubmitRequest): Promise<string> {
    const out = (await runSlurm(sbatchArgv(req), this.env)).trim();
    // --parsable prints "ID" or "ID;CLUSTER".
    const id = out.split(';')[0] ?? '';
    if (!/^\d+$/.test(id))
      throw new SlurmError('sbatch', `expected a job id, got ${JSON.stringify(out.slice(0, 200))}`);
    return id;
  }

  async jobs(ids: readonly string[]): Promise<Map<string, SlurmJob>> {
    const out = new Map<string, SlurmJob>();
    if (ids.length === 0) return out;
    const wanted = new Set(ids);
    for (const j of await this.listed()) if (wanted.has(j.jobId)) out.set(j.jobId, j);
    const missing = ids.filter((id) => !out.has(id));
    if (missing.length > 0 && this.accounting !== false) {
      for (const j of await this.fromAccounting(missing)) out.set(j.jobId, j);
    }
    return out;
  }

  /**
   * All of this user's jobs in slurmctld's memory, finished ones included (for
   * MinJobAge): one call a tick. `squeue --json` where SLURM can print JSON,
   * else `scontrol show job -o`, learnt once.
   */
  private async listed(): Promise<SlurmJob[]> {
    if (this.json !== false) {
      try {
        const jobs = parseSqueueJson(await runSlurm(['squeue', '--json', '--states=all', '--me'], this.env));
        this.json = true;
        return jobs;
      } catch (err) {
        // Only a SLURM that cannot print JSON falls back; any other failure (slurmctld down) is said as it is.
        const msg = (err as Error).message;
        const noJson = this.json === null && /JSON|plugin|unrecognized option|invalid option/i.test(msg);
        if (!noJson) throw err instanceof SlurmError ? err : new SlurmError('squeue --json', msg);
        this.json = false;
      }
    }
    return parseScontrolJobs(await runSlurm(['scontrol', 'show', 'job', '-o'], this.env));
  }

  private async fromAccounting(ids: string[]): Promise<SlurmJob[]> {
    try {
      const text = await runSlurm(['sacct', '--json', '-X', `--jobs=${ids.join(',')}`], this.env);
      this.accounting = true;
      return parseSacctJson(text);
    } catch (err) {
      if (/accounting storage is disabled/i.test((err as Error).message)) {
        this.accounting = false;
        return [];
      }
      throw err instanceof SlurmError ? err : new SlurmError('sacct --json', (err as Error).message);
    }
  }

  async terminate(jobId: string): Promise<void> {
    await runSlurm(['scancel', '--signal=TERM', '--batch', jobId], this.env);
  }

  async cancel(jobId: string): Promise<void> {
    await runSlurm(['scancel', jobId], this.env);
  }
}
