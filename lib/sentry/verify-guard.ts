import { spawnBounded } from '../spawn-bounded';

// The validation guard: a task that says "done" is done only when its
// `verify` argv exits 0 too. Run without a shell, under a timeout, its
// output kept (truncated) as evidence.

export interface VerifyResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  output: string;
}

const KEEP_BYTES = 4096;

export async function runVerify(
  argv: string[],
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<VerifyResult> {
  const r = await spawnBounded(argv, {
    cwd: opts.cwd,
    env: opts.env,
    timeoutMs: opts.timeoutMs,
    maxBytes: KEEP_BYTES,
    onOverflow: 'tail',
    mergeStderr: true,
  }).result;
  switch (r.outcome) {
    case 'exited':
      return {
        ok: r.exitCode === 0,
        exitCode: r.exitCode,
        signal: r.signal,
        timedOut: false,
        output: r.stdout.toString(),
      };
    case 'timed-out':
      return { ok: false, exitCode: null, signal: 'SIGKILL', timedOut: true, output: r.stdout.toString() };
    case 'not-started':
      return {
        ok: false,
        exitCode: null,
        signal: null,
        timedOut: false,
        output: `cannot run ${argv[0] ?? ''}: ${r.error.message}`,
      };
    case 'too-big':
      // Not with onOverflow 'tail'; said plainly all the same.
      return { ok: false, exitCode: null, signal: 'SIGKILL', timedOut: false, output: 'printed more than it may' };
  }
}
