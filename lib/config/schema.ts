import { z } from 'zod';
import { parseDurationMs } from '../duration';
import { FAILURE_CLASSES } from '../event-kinds';
import { BASE_ENV_NAMES, PASSTHROUGH_PATTERN } from '../worker-env';
import { cronProblem, timezoneProblem } from '../schedules/cron-schedule';
import { findCycle } from '../task-queue';
import { taskWorkerId, workerIdClash, workerIdOwners } from '../worker-ids';
import { HttpSchema, NotifySchema } from './gateway-schema';
import { Bytes, Duration, MIN_TICK_MS, Name } from './primitives';
import { LaneSchema } from './lane-schema';

// The raw shape of swarm.config.json, exactly as a user writes it. Defaults
// live here; compiling to milliseconds and absolute paths is config.ts's job.

const PLACEHOLDER_RE = /\$\{([^}]*)\}/g;
const PLACEHOLDERS = ['taskId', 'workerId', 'attempt'];

const Templated = z.string().superRefine((value, ctx) => {
  for (const m of value.matchAll(PLACEHOLDER_RE)) {
    if (!PLACEHOLDERS.includes(m[1] ?? '')) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown placeholder \${${m[1]}}; expected one of \${taskId}, \${workerId}, \${attempt}`,
      });
    }
  }
});

export const FailureRuleSchema = z.strictObject({
  match: z
    .string()
    .min(1)
    .meta({ description: 'A substring, or /regex/flags, looked for in the last lines of the worker log.' }),
  class: z
    .enum(FAILURE_CLASSES)
    .meta({ description: 'The failure class recorded when the rule matches (detect.CLASS).' }),
  action: z.enum(['restart', 'quarantine', 'stop', 'escalate']).default('restart').meta({
    description:
      'What Swarm does on a match: restart within the budget, quarantine at once, stop, or escalate to a person.',
  }),
});

export const RestartSchema = z.strictObject({
  delay: Duration.default('1s').meta({
    description: 'Backoff before the first restart; it doubles with each restart after that.',
  }),
  maxDelay: Duration.default('5m').meta({ description: 'The longest backoff between two restarts.' }),
  budget: z
    .number()
    .int()
    .min(0)
    .default(5)
    .meta({ description: 'Restarts allowed within window; when spent, the worker is quarantined and escalated.' }),
  window: Duration.default('1h').meta({ description: 'The span the restart budget counts over.' }),
  healthyAfter: Duration.default('5m').meta({
    description: 'How long a relaunched worker must run verified-healthy before its backoff and budget reset.',
  }),
});

export const JobSchema = z.strictObject({
  command: z.array(z.string().min(1)).min(1).meta({ description: 'argv; never run through a shell.' }),
  args: z.array(Templated).default([]).meta({
    description: "Arguments after command; placeholders are filled per worker. A queue entry's args come after these.",
  }),
  cwd: z.string().default('.').meta({ description: "The working folder of the job's processes." }),
  env: z
    .record(z.string(), z.string())
    .default({})
    .meta({ description: "Environment variables set for the job's processes, over the base and envPassthrough ones." }),
  envPassthrough: z
    .array(
      z.string().regex(new RegExp(PASSTHROUGH_PATTERN), {
        message: 'expected a variable name, or a prefix ending in * (AWS_*)',
      }),
    )
    .default([])
    .meta({
      description: `Variables of the environment Swarm runs in that the job's processes get, by name or by prefix ending in * (AWS_*). Beside these, a worker gets only ${BASE_ENV_NAMES.join(', ')}, LC_*, its job's env and Swarm's SWARM_* variables.`,
    }),
  lane: Name.default('cpu').meta({ description: "The lane (a key of lanes) whose slots the job's workers take." }),
  replicas: z.number().int().min(0).max(1024).default(0).meta({
    description:
      'Copies of the job kept running for ever, each restarted when it ends; 0 runs the job only as queued tasks.',
  }),
  progress: z
    .strictObject({
      path: Templated.optional().meta({
        description:
          'The progress file; defaults to progress.json in the worker checkpoint folder (SWARM_PROGRESS_FILE).',
      }),
      staleAfter: Duration.default('30s').meta({
        description:
          'No progress for this long is progress_stale: the worker is ended and restarted. The clock starts at the startup marker when the job has one, else at launch.',
      }),
    })
    .optional()
    .meta({
      description:
        'Progress watching: the file advances when its mtime moves or, if it holds JSON with updatedAt, when that moves.',
    }),
  logStallAfter: Duration.optional().meta({
    description: "The worker's output log not growing for this long is log_stalled.",
  }),
  startup: z
    .strictObject({
      marker: z.string().min(1).meta({ description: 'A substring the worker prints once it has started properly.' }),
      within: Duration.default('60s').meta({ description: 'How long after launch the marker may take.' }),
    })
    .optional()
    .meta({
      description: 'A startup gate: a worker that does not print marker within its time is startup_gate_missed.',
    }),
  artifacts: z
    .array(
      z.strictObject({
        path: Templated.meta({ description: 'The file the worker promises to write.' }),
        within: Duration.meta({ description: 'How long after launch it may take to appear.' }),
      }),
    )
    .default([])
    .meta({ description: 'Files a worker must produce in time; one that does not appear is artifact_missing.' }),
  maxRuntime: Duration.optional().meta({
    description: 'hang-guard ends a worker running longer than this (runtime_exceeded); the sentry then restarts it.',
  }),
  restart: RestartSchema.default(RestartSchema.parse({})).meta({ description: 'Restart backoff and budget.' }),
  memoryLimit: Bytes.optional().meta({
    description: 'A worker whose process tree uses more memory (RSS) than this is worker_oom: ended and restarted.',
  }),
  stopGrace: Duration.default('5s').meta({ description: 'SIGTERM to SIGKILL grace when Swarm stops a worker.' }),
  failures: z
    .array(FailureRuleSchema)
    .default([])
    .meta({ description: 'Your own failure rules, tried before the built-in classification of an exit.' }),
  verify: z
    .strictObject({
      command: z.array(Templated).min(1).meta({ description: "The guard's argv; never run through a shell." }),
      timeout: Duration.default('5m').meta({
        description: 'A guard running longer than this is ended and counts as failed.',
      }),
    })
    .optional()
    .meta({
      description:
        'A validation guard: argv run after a task exits 0. The task is completed only if it exits 0 too; otherwise validation_failed, retried within the budget.',
    }),
  fallbacks: z
    .array(
      z.strictObject({
        command: z
          .array(z.string().min(1))
          .min(1)
          .meta({ description: "The tier's argv, in place of the job's command." }),
        args: z.array(Templated).default([]).meta({ description: "Arguments after the tier's command." }),
        on: z
          .array(z.enum(FAILURE_CLASSES))
          .min(1)
          .meta({ description: 'The failure classes of the tier before that move the task to this tier.' }),
      }),
    )
    .default([])
    .meta({
      description:
        'Alternative commands, in order. Tier N+1 runs when tier N fails with one of the classes in fallbacks[N].on.',
    }),
  plateau: z
    .strictObject({
      direction: z
        .enum(['max', 'min'])
        .meta({ description: 'Whether a larger (max) or smaller (min) metric is better.' }),
      minDelta: z
        .number()
        .nonnegative()
        .default(0)
        .meta({ description: 'The smallest change of the best metric that counts as an improvement.' }),
      patience: z
        .number()
        .int()
        .min(1)
        .optional()
        .meta({ description: 'Progress updates without an improvement of minDelta.' }),
      within: Duration.optional().meta({ description: 'Time without an improvement of minDelta.' }),
      action: z.enum(['escalate', 'stop', 'rotate']).default('escalate').meta({
        description:
          'On a plateau: escalate to a person, stop the task, or rotate to the next strategies entry from the checkpoint.',
      }),
      target: z.number().finite().optional().meta({
        description:
          "Convergence: once the metric reaches this (within tolerance, in the job's direction), the task is stopped as completed (task.converged).",
      }),
      tolerance: z.number().nonnegative().default(0).meta({ description: 'How near target counts as reached.' }),
    })
    .refine((p) => p.patience !== undefined || p.within !== undefined || p.target !== undefined, {
      message: 'expected patience, within or target',
    })
    .optional()
    .meta({ description: 'Plateau detection on the metric field of the progress JSON.' }),
  strategies: z
    .array(z.array(Templated))
    .default([])
    .meta({ description: 'Argument sets appended in turn when a plateau rotates the strategy.' }),
  schedule: z
    .strictObject({
      cron: z
        .string()
        .superRefine((v, ctx) => {
          const problem = cronProblem(v);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .meta({
          description:
            'When to fire: 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), as node-cron reads them.',
        }),
      timezone: z
        .string()
        .superRefine((v, ctx) => {
          const problem = timezoneProblem(v);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional()
        .meta({ description: "The IANA time zone the expression is read in. Unset: the machine's." }),
      concurrency: z.enum(['allow', 'forbid', 'replace']).default('forbid').meta({
        description:
          "As a Kubernetes CronJob: forbid skips a firing while the last firing's task is queued or running; allow fires anyway; replace stops that task first.",
      }),
      startingDeadline: Duration.optional().meta({
        description:
          'A firing missed while the swarm was down runs once at start if it is at most this late; later, it is skipped and recorded. Unset: no deadline.',
      }),
    })
    .optional()
    .meta({
      description:
        'Fire the job on a schedule: each firing queues a task (schedule.fired, target job:NAME) or records schedule.skipped with the reason. The last firing is kept in swarm.db, so none happens twice.',
    }),
  stagnationAfter: z.number().int().min(2).default(3).meta({
    description: 'The same failure class this many times on one task is stagnation: escalated with the evidence.',
  }),
});

export const QueueEntrySchema = z.strictObject({
  job: Name.meta({ description: 'The job (a key of jobs) the task runs.' }),
  id: Name.optional().meta({
    description: 'The task id, unique in the queue; defaults to JOB-N, N its place in the queue from 1.',
  }),
  args: z
    .array(z.string())
    .default([])
    .meta({ description: "Arguments appended after the job's own args for this task." }),
  after: z.array(Name).default([]).meta({
    description:
      "Task ids of this queue that must complete first (as Pueue's --after). If one fails for good (quarantined, or its budget spent), this task fails with class dependency_failed.",
  }),
  priority: z
    .number()
    .int()
    .min(-1_000_000)
    .max(1_000_000)
    .default(0)
    .meta({ description: 'Higher starts first; tasks of one priority start in queue order.' }),
});

/** A queue entry's task id: its own, or JOB-N with N its place in the queue from 1. */
export const queueEntryId = (entry: { job: string; id?: string | undefined }, index: number): string =>
  entry.id ?? `${entry.job}-${index + 1}`;

export const ConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: Name.meta({ description: "The swarm's name, shown by query and status." }),
    stateDir: z.string().default('state').meta({
      description:
        'The state folder: swarm.db, the state files, workers/ and checkpoints/. SWARM_STATE_DIR overrides it.',
    }),
    tick: Duration.default('1s').meta({ description: 'How often each daemon runs its loop.' }),
    eventLogMax: Bytes.default('64M').meta({
      description:
        'workflow_events.log is renamed to workflow_events.log.1 past this and a new one started; every event stays in swarm.db.',
    }),
    logs: z
      .strictObject({
        workerOutputMax: Bytes.default('64M').meta({
          description:
            "Each worker's output log (workers/ID/output.log) is rotated past this by its shim, the one writer, so no line is lost.",
        }),
        heartbeatMax: Bytes.default('16M').meta({
          description: 'The session heartbeat (session_state_RUN.jsonl) is rotated past this.',
        }),
        keep: z.number().int().min(1).max(100).default(3).meta({
          description: 'Generations kept of a rotated file: FILE.1 (the newest) to FILE.N; older ones are deleted.',
        }),
      })
      .default({ workerOutputMax: '64M', heartbeatMax: '16M', keep: 3 })
      .meta({ description: 'Rotation of the files that only grow.' }),
    lanes: z
      .record(Name, LaneSchema)
      .default({ cpu: { kind: 'cpu', slots: 2, fill: 'utilization', hideGpus: true } })
      .meta({ description: 'Named pools of slots that jobs run in. The default is one cpu lane of 2 slots.' }),
    utilization: z
      .strictObject({
        cpuTarget: z
          .number()
          .min(1)
          .max(100)
          .default(80)
          .meta({ description: 'Machine CPU use, in percent, that cpu lanes are filled up to.' }),
        gpuTarget: z
          .number()
          .min(1)
          .max(100)
          .default(90)
          .meta({ description: 'GPU use, in percent, that gpu lanes are filled up to.' }),
        memoryCeiling: z.number().min(1).max(100).default(90).meta({
          description:
            'Machine memory use, in percent, above which no lane is filled and the newest fill worker is requeued.',
        }),
        window: Duration.default('30s').meta({
          description:
            'A lane grows while its use, read as the mean over this sliding window (and now), is below target by the 10% tolerance. Slots freed by ended tasks are refilled at once while use is below target.',
        }),
        scaleUpPeriod: Duration.default('15s').meta({
          description:
            "Growth of a lane beyond what it ran is rate-limited, as the Kubernetes HPA does: per period, at most max(scaleUpPods, the count it ran at the period's start) more.",
        }),
        scaleUpPods: z.number().int().min(1).max(1024).default(4).meta({
          description: "Growth per scaleUpPeriod allowed however few run (the HPA's default Pods policy is 4).",
        }),
        starveAfter: Duration.default('5m').meta({
          description:
            'A lane held back by utilization this long, with work queued and slots free, is lane_starved: recorded once, shown by status with what to change.',
        }),
        scaleDownStabilization: Duration.default('5m').meta({
          description:
            'Memory must stay over the ceiling this long before a fill worker is stopped, and two scale-downs (or a scale-down and a fill) are at least this far apart. Kubernetes HPA uses 300s.',
        }),
        gpuGrace: Duration.default('60s').meta({
          description: 'How long a GPU-lane worker may run before it must hold a context on its GPU (gpu_fallback).',
        }),
        retention: Duration.default('24h').meta({ description: 'How long utilization samples are kept in swarm.db.' }),
      })
      .default({
        cpuTarget: 80,
        gpuTarget: 90,
        memoryCeiling: 90,
        window: '30s',
        scaleUpPeriod: '15s',
        scaleUpPods: 4,
        starveAfter: '5m',
        scaleDownStabilization: '5m',
        gpuGrace: '60s',
        retention: '24h',
      })
      .meta({ description: 'util-controller\'s targets for lanes with fill "utilization".' }),
    run: z
      .strictObject({
        noWorkersAfter: Duration.default('2m').meta({
          description:
            'Work queued and no worker live this long is no_workers: session-state-manager launches one task past the utilization gate, and escalates if it lasts this long again.',
        }),
        stallAfter: Duration.default('30m').meta({
          description:
            'No task progressed (its progress file, or for a job without one its output log) or completed anywhere in the run this long is run_stalled: one queued task is launched past the utilization gate where a slot is free, and a person is called if it lasts this long again.',
        }),
      })
      .default({ noWorkersAfter: '2m', stallAfter: '30m' })
      .meta({ description: 'session-state-manager: the run as a whole sitting still.' }),
    consensus: z
      .strictObject({
        maxConcurrentActions: z
          .number()
          .int()
          .min(1)
          .default(4)
          .meta({ description: 'Automatic actions in flight at once, safety actions not counted.' }),
        selfGrantAfter: Duration.default('2s').meta({
          description:
            'How long a daemon waits for orchestrator-consensus before it grants its own proposal under the lease (grantedBy: "self").',
        }),
        breaker: z
          .strictObject({
            failures: z
              .number()
              .int()
              .min(1)
              .default(5)
              .meta({ description: 'Failed verifications that open the breaker.' }),
            window: Duration.default('5m').meta({ description: 'The span those failures are counted over.' }),
          })
          .default({ failures: 5, window: '5m' })
          .meta({ description: 'Failed verifications in the window that open the circuit breaker.' }),
        scoresEvery: Duration.default('1m').meta({
          description: 'How often scores are written to the event log (the state file gets them every 5 s).',
        }),
      })
      .default({
        maxConcurrentActions: 4,
        selfGrantAfter: '2s',
        breaker: { failures: 5, window: '5m' },
        scoresEvery: '1m',
      })
      .meta({ description: 'orchestrator-consensus: how proposed actions are granted.' }),
    watchdog: z
      .strictObject({
        staleAfter: Duration.default('5s').meta({
          description: 'A daemon alive but without a tick for this long is restarted.',
        }),
        quickCheckEvery: Duration.default('10m').meta({
          description: "How often the watchdog runs SQLite's quick_check on swarm.db.",
        }),
        walCheckpointBytes: Bytes.default('64M').meta({
          description: 'The watchdog checkpoints the SQLite write-ahead log when it grows past this.',
        }),
        diskMinFree: Bytes.default('512M').meta({
          description:
            "Below this much free space on the disk of the state folder, the checkpoints or a slurm lane's sharedDir, the watchdog records detect.disk_low and raises an escalation (withdrawn at a tenth more). Far below it, at 4 MiB, daemons hold their ticks until there is room.",
        }),
        pm2LogMax: Bytes.default('16M').meta({
          description:
            "Each daemon's PM2 log (PM2_HOME/logs) is cut back past this, its newest quarter kept in NAME-out.log.1, as logrotate's copytruncate does.",
        }),
      })
      .default({
        staleAfter: '5s',
        quickCheckEvery: '10m',
        walCheckpointBytes: '64M',
        diskMinFree: '512M',
        pm2LogMax: '16M',
      })
      .meta({ description: 'The watchdog: daemon liveness and the health of swarm.db.' }),
    hangGuard: z
      .strictObject({
        killGrace: Duration.default('5s').meta({
          description: 'SIGTERM to SIGKILL grace when hang-guard ends an operation.',
        }),
      })
      .default({ killGrace: '5s' })
      .meta({ description: 'hang-guard: operations that run too long.' }),
    history: z
      .strictObject({
        hmacKeyFile: z.string().min(1).optional().meta({
          description:
            'A file (0600, outside the state folder, 32 random bytes or more) whose key signs every event in a second chain (HMAC-SHA256): a history rewritten by someone without the key is found by verify-log. Unset: no second chain.',
        }),
      })
      .default({})
      .meta({
        description:
          "What makes the event log's history hard to rewrite, beyond its hash chain and head anchor (docs/SECURITY.md).",
      }),
    notify: NotifySchema,
    http: HttpSchema,
    postgres: z
      .strictObject({
        host: z
          .string()
          .min(1)
          .optional()
          .meta({ description: 'Host name, or the folder of the server socket. Unset: PGHOST, then localhost.' }),
        port: z.number().int().min(1).max(65535).optional().meta({ description: 'Unset: PGPORT, then 5432.' }),
        user: z.string().min(1).optional().meta({ description: 'Unset: PGUSER, then the user Swarm runs as.' }),
        database: z.string().min(1).optional().meta({ description: 'Unset: PGDATABASE, then the user name.' }),
        passwordEnv: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'expected the name of an environment variable' })
          .optional()
          .meta({
            description:
              'The environment variable that holds the password. Unset: PGPASSWORD, then ~/.pgpass. A password is never written in the config.',
          }),
        maxQuery: Duration.meta({
          description: 'Queries active longer than this are ended with pg_terminate_backend.',
        }),
        applicationName: z.string().optional().meta({
          description:
            'A regular expression: only queries whose application_name matches are ended. One of applicationName, usename and datname is required; those given must all match.',
        }),
        usename: z.string().min(1).optional().meta({ description: 'Only queries of this database user are ended.' }),
        datname: z.string().min(1).optional().meta({ description: 'Only queries in this database are ended.' }),
        includeSuperusers: z.boolean().default(false).meta({
          description: "Also end the queries of superusers (a DBA's VACUUM, a pg_dump); off, they are never touched.",
        }),
        cleanStart: z
          .union([
            z.boolean(),
            z.strictObject({
              olderThan: Duration.default('2m').meta({
                description:
                  "Only queries active at least this long are ended by a clean start: a fresh query is the new work's own, a leftover is not.",
              }),
              on: z.enum(['run-start', 'task-start']).default('run-start').meta({
                description:
                  '"run-start": once, at the first check of a run; "task-start": at the first check after each task.started, so a killed attempt\'s backend does not outlive it.',
              }),
            }),
          ])
          .default(false)
          .meta({
            description:
              'End matching queries left over from earlier work, before maxQuery: true is { olderThan: "2m", on: "run-start" }.',
          }),
        every: Duration.default('5s').meta({ description: 'How often hang-guard reads pg_stat_activity.' }),
      })
      .optional()
      .meta({
        description:
          'hang-guard reads pg_stat_activity with the pg driver, its own queries under a 5 s statement timeout, and ends runaway queries with pg_terminate_backend.',
      }),
    jobs: z
      .record(Name, JobSchema)
      .meta({ description: 'What Swarm runs, by name: replicas kept alive, or tasks from the queue.' }),
    queue: z.array(QueueEntrySchema).default([]).meta({
      description: 'Tasks that run once to a successful exit (exit 0 = completed), in order, as lanes have room.',
    }),
  })
  .superRefine((cfg, ctx) => {
    for (const [name, job] of Object.entries(cfg.jobs)) {
      if (!(job.lane in cfg.lanes)) {
        ctx.addIssue({
          code: 'custom',
          path: ['jobs', name, 'lane'],
          message: `expected one of the lanes: ${Object.keys(cfg.lanes).join(', ')}`,
        });
      }
    }
    const seen = new Set<string>();
    const owners = workerIdOwners({ jobs: cfg.jobs, tasks: [] });
    const ids = new Set(cfg.queue.map(queueEntryId));
    cfg.queue.forEach((entry, i) => {
      for (const dep of entry.after) {
        if (!ids.has(dep))
          ctx.addIssue({
            code: 'custom',
            path: ['queue', i, 'after'],
            message: `expected task ids of this queue; "${dep}" is none`,
          });
      }
      if (!(entry.job in cfg.jobs)) {
        ctx.addIssue({
          code: 'custom',
          path: ['queue', i, 'job'],
          message: `expected one of the jobs: ${Object.keys(cfg.jobs).join(', ')}`,
        });
      }
      const id = queueEntryId(entry, i);
      const clash = workerIdClash(owners, entry.job, id);
      if (seen.has(id))
        ctx.addIssue({
          code: 'custom',
          path: ['queue', i, 'id'],
          message: `expected a unique task id; "${id}" is used twice`,
        });
      else if (clash)
        ctx.addIssue({
          code: 'custom',
          path: ['queue', i, 'id'],
          message: `expected a task id whose worker is its own: ${clash}`,
        });
      seen.add(id);
      owners.set(taskWorkerId(entry.job, id), `task ${id} of job ${entry.job}`);
    });
    const cycle = findCycle(new Map(cfg.queue.map((e, i) => [queueEntryId(e, i), e.after])));
    if (cycle) {
      const at = cfg.queue.findIndex((e, i) => queueEntryId(e, i) === cycle[0]);
      ctx.addIssue({
        code: 'custom',
        path: ['queue', at, 'after'],
        message: `expected no cycle; these tasks wait for each other: ${cycle.join(' → ')}`,
      });
    }
    if (
      cfg.postgres &&
      cfg.postgres.applicationName === undefined &&
      cfg.postgres.usename === undefined &&
      cfg.postgres.datname === undefined
    ) {
      // Unscoped, the guard would end every active query on the server, of any user and database.
      ctx.addIssue({
        code: 'custom',
        path: ['postgres'],
        message: 'expected a scope: applicationName, usename or datname',
      });
    }
    if (cfg.postgres?.applicationName !== undefined) {
      try {
        new RegExp(cfg.postgres.applicationName);
      } catch {
        ctx.addIssue({
          code: 'custom',
          path: ['postgres', 'applicationName'],
          message: 'expected a valid regular expression',
        });
      }
    }
    // A staleness limit under two ticks fires between two looks at a healthy process.
    const twoTicksMs = 2 * Math.max(MIN_TICK_MS, parseDurationMs(cfg.tick) ?? 0);
    const atLeastTwoTicks = (value: string | number, at: (string | number)[]) => {
      if ((parseDurationMs(value) ?? 0) < twoTicksMs)
        ctx.addIssue({
          code: 'custom',
          path: at,
          message: `expected at least two ticks (${twoTicksMs}ms with tick ${cfg.tick})`,
        });
    };
    atLeastTwoTicks(cfg.watchdog.staleAfter, ['watchdog', 'staleAfter']);
    atLeastTwoTicks(cfg.run.noWorkersAfter, ['run', 'noWorkersAfter']);
    atLeastTwoTicks(cfg.run.stallAfter, ['run', 'stallAfter']);
    for (const [name, job] of Object.entries(cfg.jobs))
      if (job.progress) atLeastTwoTicks(job.progress.staleAfter, ['jobs', name, 'progress', 'staleAfter']);
  });

export type RawConfig = z.input<typeof ConfigSchema>;
export type ParsedConfig = z.output<typeof ConfigSchema>;
export type ParsedJob = z.output<typeof JobSchema>;
