import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors';
import { compileNotify, type CompiledHttp, type CompiledNotify } from './gateway-schema';
import { MIN_TICK_MS, NAME_PATTERN } from './primitives';
import { ConfigSchema, queueEntryId, type ParsedConfig, type ParsedJob } from './schema';
import { parseBytes, parseDurationMs } from '../duration';
import type { FailureClass } from '../event-kinds';
import { PACKAGE_ROOT } from '../package-root';

export { PACKAGE_ROOT };
export const DEMO_CONFIG = path.join(PACKAGE_ROOT, 'examples', 'demo', 'swarm.config.json');
export const ECOSYSTEM = path.join(PACKAGE_ROOT, 'ecosystem.config.js');

export interface FailureRule {
  matchText: string;
  test: (text: string) => boolean;
  class: FailureClass;
  action: 'restart' | 'quarantine' | 'stop' | 'escalate';
}

export interface CompiledJob {
  name: string;
  command: string[];
  args: string[];
  cwd: string;
  env: Record<string, string>;
  envPassthrough: string[];
  lane: string;
  replicas: number;
  progress: { pathTemplate: string | null; staleAfterMs: number } | null;
  logStallAfterMs: number | null;
  startup: { marker: string; withinMs: number } | null;
  artifacts: { pathTemplate: string; withinMs: number }[];
  maxRuntimeMs: number | null;
  restart: { delayMs: number; maxDelayMs: number; budget: number; windowMs: number; healthyAfterMs: number };
  memoryLimitBytes: number | null;
  stopGraceMs: number;
  failures: FailureRule[];
  verify: { command: string[]; timeoutMs: number } | null;
  /** Tier 0 is command + args; tier N (N >= 1) is fallbacks[N-1]. */
  fallbacks: { command: string[]; args: string[]; on: FailureClass[] }[];
  plateau: {
    direction: 'max' | 'min';
    minDelta: number;
    patience: number | null;
    withinMs: number | null;
    action: 'escalate' | 'stop' | 'rotate';
    target: number | null;
    tolerance: number;
  } | null;
  strategies: string[][];
  stagnationAfter: number;
  schedule: {
    cron: string;
    timezone: string | null;
    concurrency: 'allow' | 'forbid' | 'replace';
    startingDeadlineMs: number | null;
  } | null;
  /** Removed from the config by a reload while its workers still ran: they finish, nothing new starts. */
  retired?: boolean;
}

export interface CompiledLane {
  name: string;
  kind: 'cpu' | 'gpu' | 'slurm';
  slots: number;
  gpus: number[];
  fill: 'utilization' | 'slots';
  hideGpus: boolean;
  /** A slurm lane's cluster side; null for a lane of this machine. */
  slurm: CompiledSlurmLane | null;
}

export interface CompiledSlurmLane {
  partition: string | null;
  sbatchArgs: string[];
  /** Absolute: worker folders and checkpoints of this lane live here, seen by the head and compute nodes. */
  sharedDir: string;
  pollMs: number;
  pendingAfterMs: number;
}

export interface CompiledConfig {
  /** See configVersion; daemons record the version they run in their state files. */
  version: string;
  /** The file's text, as published to the daemons by a reload. */
  text: string;
  file: string;
  dir: string;
  name: string;
  stateDir: string;
  eventLogMaxBytes: number;
  logs: { workerOutputMaxBytes: number; heartbeatMaxBytes: number; keep: number };
  tickMs: number;
  lanes: Record<string, CompiledLane>;
  utilization: {
    cpuTarget: number;
    gpuTarget: number;
    memoryCeiling: number;
    windowMs: number;
    scaleUpPeriodMs: number;
    scaleUpPods: number;
    starveAfterMs: number;
    scaleDownStabilizationMs: number;
    gpuGraceMs: number;
    retentionMs: number;
  };
  run: { noWorkersAfterMs: number; stallAfterMs: number };
  jobs: Record<string, CompiledJob>;
  queue: { job: string; id: string; args: string[]; after: string[]; priority: number }[];
  consensus: {
    maxConcurrentActions: number;
    selfGrantAfterMs: number;
    breakerFailures: number;
    breakerWindowMs: number;
    scoresEveryMs: number;
  };
  watchdog: {
    staleAfterMs: number;
    quickCheckEveryMs: number;
    walCheckpointBytes: number;
    diskMinFreeBytes: number;
    pm2LogMaxBytes: number;
  };
  hangGuard: { killGraceMs: number };
  /** The HMAC key file, absolute; null: no keyed chain. */
  history: { hmacKeyFile: string | null };
  notify: CompiledNotify[];
  /** operator-gateway's HTTP server; null: none. */
  http: CompiledHttp | null;
  postgres: {
    host: string | null;
    port: number | null;
    user: string | null;
    database: string | null;
    passwordEnv: string | null;
    maxQueryMs: number;
    /** The scope: at least one is set (the schema sees to it), and every one set must match. */
    applicationName: RegExp | null;
    usename: string | null;
    datname: string | null;
    includeSuperusers: boolean;
    /** null: no clean start. */
    cleanStart: { olderThanMs: number; on: 'run-start' | 'task-start' } | null;
    everyMs: number;
  } | null;
}

/** Which file to load: the flag, then SWARM_CONFIG, then ./swarm.config.json, then the demo. */
export function resolveConfigPath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): string {
  if (flag) return path.resolve(cwd, flag);
  if (env.SWARM_CONFIG) return path.resolve(cwd, env.SWARM_CONFIG);
  const local = path.resolve(cwd, 'swarm.config.json');
  return fs.existsSync(local) ? local : DEMO_CONFIG;
}

/** A config's version: the first 16 hex digits of the SHA-256 of its text, shown by status and in config.reloaded. */
export const configVersion = (text: string): string =>
  crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);

export function readConfigText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      { path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? err})` },
    ]);
  }
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): CompiledConfig {
  return loadConfigText(readConfigText(file), file, env);
}

/** Compiles a config from its text, as read from `file` (relative paths resolve against its folder). */
export function loadConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): CompiledConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `expected JSON: ${(err as Error).message}` }]);
  }
  return { ...compileConfig(raw, file, env), version: configVersion(text), text };
}

export function compileConfig(raw: unknown, file: string, env: NodeJS.ProcessEnv = process.env): CompiledConfig {
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      file,
      parsed.error.issues.map((i) => ({
        path: i.path.map(String).join('.'),
        // zod says only "Invalid key in record"; a person needs to know what a key may be.
        message:
          i.code === 'invalid_key'
            ? `expected a name of letters, digits, '_', '.' or '-' (pattern ${NAME_PATTERN})`
            : i.message,
      })),
    );
  }
  const text = JSON.stringify(raw, null, 2);
  const compiled = { ...compile(parsed.data, path.resolve(file), env), version: configVersion(text), text };
  const key = compiled.history.hmacKeyFile;
  if (key !== null && (key === compiled.stateDir || key.startsWith(`${compiled.stateDir}${path.sep}`))) {
    // A key a worker can read (the state folder is in its reach) signs nothing a worker could not forge.
    throw new ConfigError(file, [
      { path: 'history.hmacKeyFile', message: `expected a file outside the state folder ${compiled.stateDir}` },
    ]);
  }
  return compiled;
}

function ms(value: string | number): number {
  // The schema already refused anything parseDurationMs cannot read.
  return parseDurationMs(value) as number;
}

function compileRule(rule: ParsedJob['failures'][number]): FailureRule {
  const re = /^\/(.+)\/([a-z]*)$/.exec(rule.match);
  const test = re
    ? (
        (rx: RegExp) => (t: string) =>
          rx.test(t)
      )(new RegExp(re[1] as string, re[2]))
    : (t: string) => t.includes(rule.match);
  return { matchText: rule.match, test, class: rule.class, action: rule.action };
}

function compile(cfg: ParsedConfig, file: string, env: NodeJS.ProcessEnv): Omit<CompiledConfig, 'version' | 'text'> {
  const dir = path.dirname(file);
  const jobs: Record<string, CompiledJob> = {};
  for (const [name, job] of Object.entries(cfg.jobs)) {
    jobs[name] = {
      name,
      command: job.command,
      args: job.args,
      cwd: path.resolve(dir, job.cwd),
      env: job.env,
      envPassthrough: job.envPassthrough,
      lane: job.lane,
      replicas: job.replicas,
      progress: job.progress
        ? {
            pathTemplate: job.progress.path ? path.resolve(dir, job.progress.path) : null,
            staleAfterMs: ms(job.progress.staleAfter),
          }
        : null,
      logStallAfterMs: job.logStallAfter === undefined ? null : ms(job.logStallAfter),
      startup: job.startup ? { marker: job.startup.marker, withinMs: ms(job.startup.within) } : null,
      artifacts: job.artifacts.map((a) => ({ pathTemplate: path.resolve(dir, a.path), withinMs: ms(a.within) })),
      maxRuntimeMs: job.maxRuntime === undefined ? null : ms(job.maxRuntime),
      restart: {
        delayMs: ms(job.restart.delay),
        maxDelayMs: ms(job.restart.maxDelay),
        budget: job.restart.budget,
        windowMs: ms(job.restart.window),
        healthyAfterMs: ms(job.restart.healthyAfter),
      },
      memoryLimitBytes: job.memoryLimit === undefined ? null : (parseBytes(job.memoryLimit) as number),
      stopGraceMs: ms(job.stopGrace),
      failures: job.failures.map(compileRule),
      verify: job.verify ? { command: job.verify.command, timeoutMs: ms(job.verify.timeout) } : null,
      fallbacks: job.fallbacks,
      plateau: job.plateau
        ? {
            direction: job.plateau.direction,
            minDelta: job.plateau.minDelta,
            patience: job.plateau.patience ?? null,
            withinMs: job.plateau.within === undefined ? null : ms(job.plateau.within),
            action: job.plateau.action,
            target: job.plateau.target ?? null,
            tolerance: job.plateau.tolerance,
          }
        : null,
      strategies: job.strategies,
      stagnationAfter: job.stagnationAfter,
      schedule: job.schedule
        ? {
            cron: job.schedule.cron.trim(),
            timezone: job.schedule.timezone ?? null,
            concurrency: job.schedule.concurrency,
            startingDeadlineMs: job.schedule.startingDeadline === undefined ? null : ms(job.schedule.startingDeadline),
          }
        : null,
    };
  }
  const lanes: Record<string, CompiledLane> = {};
  for (const [name, lane] of Object.entries(cfg.lanes))
    lanes[name] = {
      name,
      kind: lane.kind,
      slots: lane.slots,
      gpus: lane.gpus ?? [],
      // The cluster holds a slurm lane's resources: this machine's use says nothing about them.
      fill: lane.kind === 'slurm' ? 'slots' : lane.fill,
      hideGpus: lane.hideGpus,
      slurm:
        lane.kind === 'slurm'
          ? {
              partition: lane.partition ?? null,
              sbatchArgs: lane.sbatch ?? [],
              sharedDir: path.resolve(dir, lane.sharedDir ?? ''),
              pollMs: ms(lane.poll ?? '2s'),
              pendingAfterMs: ms(lane.pendingAfter ?? '10m'),
            }
          : null,
    };
  return {
    file,
    dir,
    name: cfg.name,
    stateDir: path.resolve(env.SWARM_STATE_DIR ? process.cwd() : dir, env.SWARM_STATE_DIR || cfg.stateDir),
    tickMs: Math.max(MIN_TICK_MS, ms(cfg.tick)),
    eventLogMaxBytes: parseBytes(cfg.eventLogMax) as number,
    logs: {
      workerOutputMaxBytes: parseBytes(cfg.logs.workerOutputMax) as number,
      heartbeatMaxBytes: parseBytes(cfg.logs.heartbeatMax) as number,
      keep: cfg.logs.keep,
    },
    lanes,
    utilization: {
      cpuTarget: cfg.utilization.cpuTarget,
      gpuTarget: cfg.utilization.gpuTarget,
      memoryCeiling: cfg.utilization.memoryCeiling,
      windowMs: ms(cfg.utilization.window),
      scaleUpPeriodMs: ms(cfg.utilization.scaleUpPeriod),
      scaleUpPods: cfg.utilization.scaleUpPods,
      starveAfterMs: ms(cfg.utilization.starveAfter),
      scaleDownStabilizationMs: ms(cfg.utilization.scaleDownStabilization),
      gpuGraceMs: ms(cfg.utilization.gpuGrace),
      retentionMs: ms(cfg.utilization.retention),
    },
    run: { noWorkersAfterMs: ms(cfg.run.noWorkersAfter), stallAfterMs: ms(cfg.run.stallAfter) },
    jobs,
    queue: cfg.queue.map((q, i) => ({
      job: q.job,
      id: queueEntryId(q, i),
      args: q.args,
      after: q.after,
      priority: q.priority,
    })),
    consensus: {
      maxConcurrentActions: cfg.consensus.maxConcurrentActions,
      selfGrantAfterMs: ms(cfg.consensus.selfGrantAfter),
      breakerFailures: cfg.consensus.breaker.failures,
      breakerWindowMs: ms(cfg.consensus.breaker.window),
      scoresEveryMs: ms(cfg.consensus.scoresEvery),
    },
    watchdog: {
      staleAfterMs: ms(cfg.watchdog.staleAfter),
      quickCheckEveryMs: ms(cfg.watchdog.quickCheckEvery),
      walCheckpointBytes: parseBytes(cfg.watchdog.walCheckpointBytes) as number,
      diskMinFreeBytes: parseBytes(cfg.watchdog.diskMinFree) as number,
      pm2LogMaxBytes: parseBytes(cfg.watchdog.pm2LogMax) as number,
    },
    hangGuard: { killGraceMs: ms(cfg.hangGuard.killGrace) },
    history: { hmacKeyFile: cfg.history.hmacKeyFile === undefined ? null : path.resolve(dir, cfg.history.hmacKeyFile) },
    notify: compileNotify(cfg.notify),
    http: cfg.http ? { host: cfg.http.host, port: cfg.http.port } : null,
    postgres: cfg.postgres
      ? {
          host: cfg.postgres.host ?? null,
          port: cfg.postgres.port ?? null,
          user: cfg.postgres.user ?? null,
          database: cfg.postgres.database ?? null,
          passwordEnv: cfg.postgres.passwordEnv ?? null,
          maxQueryMs: ms(cfg.postgres.maxQuery),
          applicationName: cfg.postgres.applicationName === undefined ? null : new RegExp(cfg.postgres.applicationName),
          usename: cfg.postgres.usename ?? null,
          datname: cfg.postgres.datname ?? null,
          includeSuperusers: cfg.postgres.includeSuperusers,
          cleanStart: compileCleanStart(cfg.postgres.cleanStart),
          everyMs: ms(cfg.postgres.every),
        }
      : null,
  };
}

function compileCleanStart(
  c: NonNullable<ParsedConfig['postgres']>['cleanStart'],
): NonNullable<CompiledConfig['postgres']>['cleanStart'] {
  if (c === false) return null;
  const { olderThan, on } = c === true ? { olderThan: '2m', on: 'run-start' as const } : c;
  return { olderThanMs: ms(olderThan), on };
}

/** Fills ${taskId}, ${workerId} and ${attempt}; the schema already refused any other placeholder. */
export function interpolate(template: string, vars: { taskId: string; workerId: string; attempt: number }): string {
  return template.replace(/\$\{(taskId|workerId|attempt)\}/g, (_m, key: string) =>
    key === 'attempt' ? String(vars.attempt) : key === 'taskId' ? vars.taskId : vars.workerId,
  );
}
