import { Command, CommanderError } from 'commander';
import { ConfigError, UsageError, errorMessage } from '../lib/errors';
import type { GlobalOptions } from '../lib/cli/cli-context';

// Each command's module is loaded only when that command runs: `query` is
// what scripts and agents call in a loop, and its time is mostly Node
// loading modules, so it must not pay for the others (PM2's client alone
// costs ~150 ms).
const cli = {
  events: () => require('../lib/cli/events') as typeof import('../lib/cli/events'),
  manual: () => require('../lib/cli/manual') as typeof import('../lib/cli/manual'),
  query: () => require('../lib/cli/query') as typeof import('../lib/cli/query'),
  verify: () => require('../lib/cli/verify') as typeof import('../lib/cli/verify'),
  probe: () => require('../lib/cli/probe') as typeof import('../lib/cli/probe'),
  upDown: () => require('../lib/cli/up-down') as typeof import('../lib/cli/up-down'),
};

// Exit codes (CONTRACT): 0 done; 1 it ran and the answer is bad; 2 usage or
// config error, with the reason on stderr.

const program = new Command('swarmctl')
  .description('Swarm: a self-healing supervisor for long-running compute work')
  .option('--json', 'machine output on stdout, nothing else there')
  .option('--config <path>', 'config file (default: $SWARM_CONFIG, ./swarm.config.json, then the demo)')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

let result: Promise<number> | number = 0;
const run = (fn: (opts: GlobalOptions) => Promise<number> | number) =>
  function (this: Command) {
    result = fn(this.optsWithGlobals<GlobalOptions>());
  };

const withJson = (c: Command) => c.option('--json', 'machine output').option('--config <path>', 'config file');

withJson(program.command('query').description('the whole snapshot, from the state folder alone')).action(run((o) => cli.query().queryCommand(o)));
withJson(program.command('status').description('the snapshot as tables, problems first')).action(run((o) => cli.query().statusCommand(o)));
withJson(program.command('events').description('the event log, oldest first'))
  .option('--follow', 'keep printing new events')
  .option('--since <seq>', 'only events after this seq')
  .option('--kind <prefix>', 'only kinds starting with this, e.g. detect or action.verified')
  .option('--target <target>', 'only this target, e.g. worker:optimizer-0')
  .option('--limit <n>', 'at most this many')
  .action(run((o) => cli.events().eventsCommand(o)));
withJson(program.command('submit <job> [args...]').description('add a task to the queue; prints its id'))
  .option('--id <id>', 'task id')
  .action(function (this: Command, job: string, args: string[]) {
    result = cli.manual().submitCommand(job, args ?? [], this.optsWithGlobals());
  });
for (const op of ['restart', 'stop'] as const) {
  withJson(program.command(`${op} <worker>`).description(`${op} a worker (recorded as source swarmctl)`)).action(function (this: Command, worker: string) {
    result = cli.manual().workerCommand(op, worker, this.optsWithGlobals());
  });
}
withJson(program.command('pause').description('maintenance mode: no automatic action but safety actions')).action(run((o) => cli.manual().pauseCommand(true, o)));
withJson(program.command('resume').description('end maintenance mode')).action(run((o) => cli.manual().pauseCommand(false, o)));
withJson(program.command('ack <escalationId>').description('a person resolves an escalation')).action(function (this: Command, id: string) {
  result = cli.manual().ackCommand(id, this.optsWithGlobals());
});
withJson(program.command('verify-log').description("check the event log's hash chain")).action(run((o) => cli.verify().verifyLogCommand(o)));
withJson(program.command('probe <what>').description('one reading: `probe gpu` runs nvidia-smi -q -x')).action(function (this: Command, what: string) {
  result = cli.probe().probeCommand(what, this.optsWithGlobals());
});
withJson(program.command('doctor').description('check PM2, the state folder, SQLite and nvidia-smi')).action(run((o) => cli.verify().doctorCommand(o)));
withJson(program.command('up').description('start the daemons under PM2')).action(run((o) => cli.upDown().upCommand(o)));
withJson(program.command('down').description('remove the daemons and workers from PM2')).action(run((o) => cli.upDown().downCommand(o)));

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
    return await result;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`swarmctl: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`swarmctl: ${errorMessage(err)}\n`);
    return 1;
  }
}

// `swarmctl events | head`: a reader that has gone away ends the command quietly, as it would for cat.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  process.stderr.write(`swarmctl: cannot write output: ${err.message}\n`);
  process.exit(1);
});

main().then((code) => {
  process.exitCode = code;
  // Commands that hold no timers end here; `events --follow` resolves only on a signal.
  if (code !== 0 || !process.argv.includes('--follow')) setImmediate(() => process.exit(code));
});
