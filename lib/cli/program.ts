import { Command } from 'commander';
import type { GlobalOptions } from './cli-context';

// swarmctl's commands and flags, in one place: scripts/swarmctl-main.ts runs
// them, and the docs test reads them, so docs/cli.md cannot leave one out.
//
// Each command's module is loaded only when that command runs: `query` is
// what scripts and agents call in a loop, and its time is mostly Node
// loading modules, so it must not pay for the others (PM2's client alone
// costs ~150 ms).
/* eslint-disable @typescript-eslint/no-require-imports -- loaded on use, as said above */
const cli = {
  events: () => require('./events') as typeof import('./events'),
  manual: () => require('./manual') as typeof import('./manual'),
  query: () => require('./query') as typeof import('./query'),
  verify: () => require('./verify') as typeof import('./verify'),
  probe: () => require('./probe') as typeof import('./probe'),
  upDown: () => require('./up-down') as typeof import('./up-down'),
  reload: () => require('./reload') as typeof import('./reload'),
  results: () => require('./results') as typeof import('./results'),
  report: () => require('./report') as typeof import('./report'),
  notify: () => require('./notify') as typeof import('./notify'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** Exit codes, as docs/cli.md lists them. */
export { EXIT } from './exit-codes';

export type CommandResult = Promise<number> | number;

/** The program; `onRun` receives the exit code (or its promise) of the command that ran. */
export function buildProgram(onRun: (result: CommandResult) => void): Command {
  const program = new Command('swarmctl')
    .description('Swarm: a self-healing supervisor for long-running compute work')
    .option('--json', 'machine output on stdout, nothing else there')
    .option('--config <path>', 'config file (default: $SWARM_CONFIG, ./swarm.config.json, then the demo)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const run = (fn: (opts: GlobalOptions) => CommandResult) =>
    function (this: Command) {
      onRun(fn(this.optsWithGlobals<GlobalOptions>()));
    };
  const withJson = (c: Command) => c.option('--json', 'machine output').option('--config <path>', 'config file');

  withJson(program.command('query').description('the whole snapshot, from the state folder alone')).action(
    run((o) => cli.query().queryCommand(o)),
  );
  withJson(program.command('status').description('the snapshot as tables, problems first')).action(
    run((o) => cli.query().statusCommand(o)),
  );
  withJson(program.command('events').description('the event log, oldest first'))
    .option('--follow', 'keep printing new events')
    .option('--since <seq>', 'only events after this seq')
    .option('--kind <prefix>', 'only kinds starting with this, e.g. detect or action.verified')
    .option('--target <target>', 'only this target, e.g. worker:optimizer-0')
    .option('--limit <n>', 'at most this many')
    .action(run((o) => cli.events().eventsCommand(o)));
  withJson(program.command('submit <job> [args...]').description('add a task to the queue; prints its id'))
    .option('--id <id>', 'task id')
    .option(
      '--after <id>',
      'a task that must complete first (repeat for more)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--priority <n>', 'higher starts first (default 0)')
    .action(function (this: Command, job: string, args: string[]) {
      onRun(cli.manual().submitCommand(job, args ?? [], this.optsWithGlobals()));
    });
  for (const op of ['restart', 'stop'] as const) {
    withJson(program.command(`${op} <worker>`).description(`${op} a worker (recorded as source swarmctl)`)).action(
      function (this: Command, worker: string) {
        onRun(cli.manual().workerCommand(op, worker, this.optsWithGlobals()));
      },
    );
  }
  withJson(
    program
      .command('results')
      .description('one row per task of the run: how it ended, attempts, runtime, final metric, best, verify'),
  )
    .option('--job <job>', "only this job's tasks")
    .option('--tsv', 'tab-separated, with a header line')
    .action(run((o) => cli.results().resultsCommand(o)));
  withJson(
    program
      .command('report [run]')
      .description(
        'the end-of-run report (state/reports/RUN.md): tasks, incidents by class, escalations, results, what remains; the latest run by default',
      ),
  ).action(function (this: Command, runId: string | undefined) {
    onRun(cli.report().reportCommand(runId, this.optsWithGlobals()));
  });
  withJson(
    program.command('reload').description('validate the config file and apply it to the running swarm, no restart'),
  )
    .option('--now', "stop a removed job's workers at once instead of letting them finish their task")
    .action(run((o) => cli.reload().reloadCommand(o)));
  withJson(program.command('pause').description('maintenance mode: no automatic action but safety actions')).action(
    run((o) => cli.manual().pauseCommand(true, o)),
  );
  withJson(program.command('resume').description('end maintenance mode')).action(
    run((o) => cli.manual().pauseCommand(false, o)),
  );
  withJson(program.command('ack <escalationId>').description('a person resolves an escalation')).action(function (
    this: Command,
    id: string,
  ) {
    onRun(cli.manual().ackCommand(id, this.optsWithGlobals()));
  });
  withJson(program.command('verify-log').description("check the event log's hash chain")).action(
    run((o) => cli.verify().verifyLogCommand(o)),
  );
  withJson(
    program
      .command('probe <what>')
      .description('one reading: `probe gpu` runs nvidia-smi -q -x; `probe slurm` lists partitions and nodes'),
  ).action(function (this: Command, what: string) {
    onRun(cli.probe().probeCommand(what, this.optsWithGlobals()));
  });
  withJson(
    program
      .command('notify <what> [name]')
      .description(
        '`notify test [NAME]`: send a test message to each notify endpoint, or NAME, and say what came back',
      ),
  ).action(function (this: Command, what: string, name: string | undefined) {
    onRun(cli.notify().notifyCommand(what, name, this.optsWithGlobals()));
  });
  withJson(
    program
      .command('dashboard')
      .description("print the dashboard's URL with this start's token (needs `http` in the config)"),
  ).action(run((o) => cli.upDown().dashboardCommand(o)));
  withJson(
    program
      .command('doctor')
      .description('check PM2, the state folder, SQLite, nvidia-smi and, for slurm lanes, SLURM and the shared folder'),
  ).action(run((o) => cli.verify().doctorCommand(o)));
  withJson(program.command('up').description('start the daemons under PM2')).action(
    run((o) => cli.upDown().upCommand(o)),
  );
  withJson(program.command('down').description('remove the daemons and workers from PM2')).action(
    run((o) => cli.upDown().downCommand(o)),
  );
  return program;
}
