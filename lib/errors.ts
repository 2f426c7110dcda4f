// The few named errors Swarm raises. Each carries what a person needs to fix it.

/**
 * The exit code of a daemon that cannot start (a bad config, a key file, a
 * folder another swarm holds). PM2's `stop_exit_codes` leaves it stopped,
 * and the watchdog escalates instead of restarting it.
 */
export const CANNOT_START_EXIT = 2;

/** A config file that cannot be used. Exit code 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly issues: { path: string; message: string }[],
  ) {
    // A union's branches can report one fault twice: each line once.
    super(
      `invalid config ${file}:\n${[...new Set(issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`))].join('\n')}`,
    );
  }
}

/** Wrong command-line use. Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A state file that is missing or does not match its schema. */
export class StateFileError extends Error {
  override name = 'StateFileError';
  constructor(
    readonly file: string,
    readonly reason: 'missing' | 'corrupt',
    detail: string,
  ) {
    super(`state file ${file} is ${reason}: ${detail}`);
  }
}

/** A lifecycle transition that the state machine does not allow. */
export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError';
  constructor(
    readonly machine: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`${machine}: illegal transition ${from} -> ${to}`);
  }
}

/** The event log cannot be written or read; `diskFull` when it was for want of space, after retries. */
export class EventLogError extends Error {
  override name = 'EventLogError';
  constructor(
    message: string,
    readonly diskFull = false,
  ) {
    super(message);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The state folder belongs to another running swarm (lib/state-lock.ts). */
export class StateFolderInUseError extends Error {
  override name = 'StateFolderInUseError';
}

/** A file in the state folder that is not a plain regular file (a symlink, a FIFO), or too big to read: refused, never followed. */
export class UnsafeFileError extends Error {
  override name = 'UnsafeFileError';
  constructor(
    readonly file: string,
    readonly why: string,
  ) {
    super(`${file}: refused: ${why}`);
  }
}

/** A SLURM command failed, timed out or printed what cannot be read. */
export class SlurmError extends Error {
  override name = 'SlurmError';
  constructor(
    readonly command: string,
    detail: string,
  ) {
    super(`${command}: ${detail}`);
  }
}

/** A call to PM2's God daemon over its RPC socket failed, was refused or went unanswered. */
export class Pm2RpcError extends Error {
  override name = 'Pm2RpcError';
  constructor(
    readonly method: string,
    detail: string,
  ) {
    super(`pm2 ${method}: ${detail}`);
  }
}
