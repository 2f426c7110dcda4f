import { z } from 'zod';
import { parseBytes, parseDurationMs } from './duration';
import { FAILURE_CLASSES } from './event-kinds';

// The raw shape of swarm.config.json, exactly as a user writes it. Defaults
// live here; compiling to milliseconds and absolute paths is config.ts's job.

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const nameRe = new RegExp(NAME_PATTERN);
const PLACEHOLDER_RE = /\$\{([^}]*)\}/g;
const PLACEHOLDERS = ['taskId', 'workerId', 'attempt'];

export const Duration = z
  .union([
    z.string().regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/, { message: 'expected a duration such as "500ms", "30s", "5m" or "2h"' }),
    z.number().int().nonnegative(),
  ])
  .refine((v) => parseDurationMs(v) !== null, { message: 'expected a duration such as "500ms", "30s", "5m" or "2h"' })
  .meta({ description: 'A duration: a string with a unit (ms, s, m, h, d) or integer milliseconds.' });

export const Bytes = z
  .union([z.string().regex(/^\d+(\.\d+)?\s*[KMGTkmgt]?(i?B)?$/), z.number().int().positive()])
  .refine((v) => parseBytes(v) !== null, { message: 'expected a size such as "512M" or "4G"' })
  .meta({ description: 'A size in bytes: an integer, or a number with K, M, G or T (binary units).' });

const Templated = z.string().superRefine((value, ctx) => {
  for (const m of value.matchAll(PLACEHOLDER_RE)) {
    if (!PLACEHOLDERS.includes(m[1] ?? '')) {
      ctx.addIssue({ code: 'custom', message: `unknown placeholder \${${m[1]}}; expected one of \${taskId}, \${workerId}, \${attempt}` });
    }
  }
});

const Name = z.string().regex(nameRe, { message: `expected a name of letters, digits, '_', '.' or '-' (pattern ${NAME_PATTERN})` });

export const LaneSchema = z.strictObject({
  kind: z.enum(['cpu', 'gpu']),
  slots: z.number().int().min(1).max(1024),
  gpus: z.array(z.number().int().nonnegative()).optional(),
  fill: z.enum(['utilization', 'slots']).default('utilization').meta({
    description: 'utilization: start queued work only while the lane resource sits below target (util-controller); slots: whenever a slot is free.',
  }),
});

export const FailureRuleSchema = z.strictObject({
  match: z.string().min(1).meta({ description: 'A substring, or /regex/flags, looked for in the last lines of the worker log.' }),
  class: z.enum(FAILURE_CLASSES),
  action: z.enum(['restart', 'quarantine', 'stop', 'escalate']).default('restart'),
});

export const RestartSchema = z.strictObject({
  delay: Duration.default('1s'),
  maxDelay: Duration.default('5m'),
  budget: z.number().int().min(0).default(5),
  window: Duration.default('1h'),
  healthyAfter: Duration.default('5m').meta({
    description: 'How long a relaunched worker must run verified-healthy before its backoff and budget reset.',
  }),
});

export const JobSchema = z.strictObject({
  command: z.array(z.string().min(1)).min(1).meta({ description: 'argv; never run through a shell.' }),
  args: z.array(Templated).default([]),
  cwd: z.string().default('.'),
  env: z.record(z.string(), z.string()).default({}),
  lane: Name.default('cpu'),
  replicas: z.number().int().min(0).max(1024).default(0),
  progress: z.strictObject({ path: Templated.optional().meta({ description: 'Defaults to progress.json in the worker checkpoint folder.' }), staleAfter: Duration.default('30s') }).optional(),
  logStallAfter: Duration.optional(),
  startup: z.strictObject({ marker: z.string().min(1), within: Duration.default('60s') }).optional(),
  artifacts: z.array(z.strictObject({ path: Templated, within: Duration })).default([]),
  maxRuntime: Duration.optional(),
  restart: RestartSchema.default(RestartSchema.parse({})),
  memoryLimit: Bytes.optional(),
  stopGrace: Duration.default('5s').meta({ description: 'SIGTERM to SIGKILL grace when Swarm stops a worker.' }),
  failures: z.array(FailureRuleSchema).default([]),
  verify: z
    .strictObject({ command: z.array(Templated).min(1), timeout: Duration.default('5m') })
    .optional()
    .meta({ description: 'A validation guard: argv run after a task exits 0. The task is completed only if it exits 0 too; otherwise validation_failed, retried within the budget.' }),
  fallbacks: z
    .array(z.strictObject({ command: z.array(z.string().min(1)).min(1), args: z.array(Templated).default([]), on: z.array(z.enum(FAILURE_CLASSES)).min(1) }))
    .default([])
    .meta({ description: 'Alternative commands, in order. Tier N+1 runs when tier N fails with one of the classes in fallbacks[N].on.' }),
  plateau: z
    .strictObject({
      direction: z.enum(['max', 'min']),
      minDelta: z.number().nonnegative().default(0),
      patience: z.number().int().min(1).optional().meta({ description: 'Progress updates without an improvement of minDelta.' }),
      within: Duration.optional().meta({ description: 'Time without an improvement of minDelta.' }),
      action: z.enum(['escalate', 'stop', 'rotate']).default('escalate'),
    })
    .refine((p) => p.patience !== undefined || p.within !== undefined, { message: 'expected patience or within (or both)' })
    .optional(),
  strategies: z.array(z.array(Templated)).default([]).meta({ description: 'Argument sets appended in turn when a plateau rotates the strategy.' }),
  stagnationAfter: z.number().int().min(2).default(3).meta({ description: 'The same failure class this many times on one task is stagnation: escalated with the evidence.' }),
});

export const QueueEntrySchema = z.strictObject({
  job: Name,
  id: Name.optional(),
  args: z.array(z.string()).default([]),
});

export const ConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: Name,
    stateDir: z.string().default('state'),
    tick: Duration.default('1s'),
    lanes: z.record(Name, LaneSchema).default({ cpu: { kind: 'cpu', slots: 2, fill: 'utilization' } }),
    utilization: z
      .strictObject({
        cpuTarget: z.number().min(1).max(100).default(80),
        gpuTarget: z.number().min(1).max(100).default(90),
        memoryCeiling: z.number().min(1).max(100).default(90),
        window: Duration.default('30s').meta({ description: 'Utilization must stay below target (by the 10% tolerance) for this long before a lane is filled.' }),
        scaleDownStabilization: Duration.default('5m').meta({ description: 'Memory must stay over the ceiling this long before a fill worker is stopped, and two scale-downs (or a scale-down and a fill) are at least this far apart. Kubernetes HPA uses 300s.' }),
        gpuGrace: Duration.default('60s').meta({ description: 'How long a GPU-lane worker may run before it must hold a context on its GPU (gpu_fallback).' }),
        retention: Duration.default('24h').meta({ description: 'How long utilization samples are kept in swarm.db.' }),
      })
      .default({ cpuTarget: 80, gpuTarget: 90, memoryCeiling: 90, window: '30s', scaleDownStabilization: '5m', gpuGrace: '60s', retention: '24h' }),
    consensus: z
      .strictObject({
        maxConcurrentActions: z.number().int().min(1).default(4).meta({ description: 'Automatic actions in flight at once, safety actions not counted.' }),
        selfGrantAfter: Duration.default('2s').meta({ description: 'How long a daemon waits for orchestrator-consensus before it grants its own proposal under the lease (grantedBy: "self").' }),
        breaker: z
          .strictObject({ failures: z.number().int().min(1).default(5), window: Duration.default('5m') })
          .default({ failures: 5, window: '5m' })
          .meta({ description: 'Failed verifications in the window that open the circuit breaker.' }),
        scoresEvery: Duration.default('1m').meta({ description: 'How often scores are written to the event log (the state file gets them every 5 s).' }),
      })
      .default({ maxConcurrentActions: 4, selfGrantAfter: '2s', breaker: { failures: 5, window: '5m' }, scoresEvery: '1m' }),
    watchdog: z
      .strictObject({
        staleAfter: Duration.default('5s').meta({ description: 'A daemon alive but without a tick for this long is restarted.' }),
        quickCheckEvery: Duration.default('10m'),
        walCheckpointBytes: Bytes.default('64M'),
      })
      .default({ staleAfter: '5s', quickCheckEvery: '10m', walCheckpointBytes: '64M' }),
    hangGuard: z
      .strictObject({ killGrace: Duration.default('5s').meta({ description: 'SIGTERM to SIGKILL grace when hang-guard ends an operation.' }) })
      .default({ killGrace: '5s' }),
    postgres: z
      .strictObject({
        host: z.string().default('localhost').meta({ description: 'Host name, or the folder of the server socket.' }),
        port: z.number().int().min(1).max(65535).default(5432),
        user: z.string().default('postgres'),
        database: z.string().default('postgres'),
        maxQuery: Duration.meta({ description: 'Queries active longer than this are ended with pg_terminate_backend.' }),
        applicationName: z.string().optional().meta({ description: 'A regular expression: only queries whose application_name matches are ended.' }),
        cleanStart: z.boolean().default(false).meta({ description: 'When a run starts, end every matching active query, whatever its age.' }),
        every: Duration.default('5s'),
      })
      .optional()
      .meta({ description: 'hang-guard reads pg_stat_activity through psql (the password, if any, from PGPASSWORD).' }),
    jobs: z.record(Name, JobSchema),
    queue: z.array(QueueEntrySchema).default([]),
  })
  .superRefine((cfg, ctx) => {
    for (const [name, job] of Object.entries(cfg.jobs)) {
      if (!(job.lane in cfg.lanes)) {
        ctx.addIssue({ code: 'custom', path: ['jobs', name, 'lane'], message: `expected one of the lanes: ${Object.keys(cfg.lanes).join(', ')}` });
      }
    }
    const seen = new Set<string>();
    cfg.queue.forEach((entry, i) => {
      if (!(entry.job in cfg.jobs)) {
        ctx.addIssue({ code: 'custom', path: ['queue', i, 'job'], message: `expected one of the jobs: ${Object.keys(cfg.jobs).join(', ')}` });
      }
      const id = entry.id ?? `${entry.job}-${i + 1}`;
      if (seen.has(id)) ctx.addIssue({ code: 'custom', path: ['queue', i, 'id'], message: `expected a unique task id; "${id}" is used twice` });
      seen.add(id);
    });
    if (cfg.postgres?.applicationName !== undefined) {
      try {
        new RegExp(cfg.postgres.applicationName);
      } catch {
        ctx.addIssue({ code: 'custom', path: ['postgres', 'applicationName'], message: 'expected a valid regular expression' });
      }
    }
    for (const [name, lane] of Object.entries(cfg.lanes)) {
      if (lane.kind === 'gpu' && (!lane.gpus || lane.gpus.length === 0)) {
        ctx.addIssue({ code: 'custom', path: ['lanes', name, 'gpus'], message: 'expected a list of GPU indexes for a gpu lane' });
      }
    }
  });

export type RawConfig = z.input<typeof ConfigSchema>;
export type ParsedConfig = z.output<typeof ConfigSchema>;
export type ParsedJob = z.output<typeof JobSchema>;
