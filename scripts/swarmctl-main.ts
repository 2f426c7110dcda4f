import { CommanderError } from 'commander';
import { buildProgram, EXIT, type CommandResult } from '../lib/cli/program';
import { ConfigError, UsageError, errorMessage } from '../lib/errors';
import { HmacKeyError } from '../lib/hmac-chain';

// Exit codes (docs/cli.md): 0 done; 1 it ran and the answer is bad; 2 usage
// or config error, with the reason on stderr.

let result: CommandResult = EXIT.done;
const program = buildProgram((r) => (result = r));

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
    return await result;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.done : EXIT.usage;
    }
    if (err instanceof ConfigError || err instanceof UsageError || err instanceof HmacKeyError) {
      process.stderr.write(`swarmctl: ${err.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`swarmctl: ${errorMessage(err)}\n`);
    return EXIT.bad;
  }
}

// `swarmctl events | head`: a reader that has gone away ends the command quietly, as it would for cat.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.done);
  process.stderr.write(`swarmctl: cannot write output: ${err.message}\n`);
  process.exit(EXIT.bad);
});

/**
 * Ends the process once everything written to stdout and stderr is out. To a
 * pipe, Node writes asynchronously: an exit straight after a large write (a
 * `query --json` of a few hundred KiB read by a script) cut the output short
 * with exit code 0. A write's callback runs after every earlier write is done.
 */
function exitWhenFlushed(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main().then((code) => {
  process.exitCode = code;
  // Commands that hold no timers end here; `events --follow` resolves only on a signal.
  if (code !== 0 || !process.argv.includes('--follow')) exitWhenFlushed(code);
});
