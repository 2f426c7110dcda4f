import { spawn, type ChildProcess } from 'node:child_process';

// The one way Swarm runs a short-lived child it waits for: argv (never a
// shell), in a process group of its own, under a timeout and a size cap on
// what it prints. nvidia-smi, a task's verify guard and swarm.db's
// quick_check all run through here.
//
// At the timeout the whole group gets SIGKILL and the run ends at once,
// without waiting for the child to go: a program stuck in the kernel (an
// nvidia-smi in D state) never exits, and must not hold its caller.

export interface BoundedOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** The most bytes of stdout kept. */
  maxBytes: number;
  /** Past maxBytes: 'kill' ends the child (outcome 'too-big'); 'tail' keeps the last maxBytes and lets it run. */
  onOverflow: 'kill' | 'tail';
  /** stderr joins stdout, in order, as a terminal shows them. */
  mergeStderr?: boolean;
}

export type BoundedResult =
  | {
      outcome: 'exited';
      exitCode: number | null;
      signal: NodeJS.Signals | null;
      stdout: Buffer;
      stderr: string;
      elapsedMs: number;
    }
  | { outcome: 'timed-out'; stdout: Buffer; stderr: string; elapsedMs: number }
  | { outcome: 'too-big'; elapsedMs: number }
  | { outcome: 'not-started'; error: NodeJS.ErrnoException; elapsedMs: number };

/** Kept of stderr when it does not join stdout: enough for a message. */
const STDERR_KEEP = 4096;

export interface BoundedRun {
  child: ChildProcess;
  result: Promise<BoundedResult>;
  /** Ends the child's process group now; the result says 'timed-out'. */
  kill(): void;
}

export function spawnBounded(argv: readonly string[], opts: BoundedOptions): BoundedRun {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('spawnBounded: empty argv');
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out: Buffer[] = [];
  let outBytes = 0;
  let stderr = '';
  const killGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group is already gone: what killing it wanted.
    }
  };
  let resolve: (r: BoundedResult) => void = () => undefined;
  const result = new Promise<BoundedResult>((r) => (resolve = r));
  let settled = false;
  /** The first outcome stands: a close after a timeout or an overflow changes nothing. */
  const settle = (r: BoundedResult) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    resolve(r);
  };
  const stdoutNow = () => Buffer.concat(out);
  const timeOut = () => {
    killGroup();
    settle({ outcome: 'timed-out', stdout: stdoutNow(), stderr, elapsedMs: elapsed() });
  };
  const timer = setTimeout(timeOut, opts.timeoutMs);
  const keep = (c: Buffer) => {
    out.push(c);
    outBytes += c.length;
    if (outBytes <= opts.maxBytes) return;
    if (opts.onOverflow === 'kill') {
      killGroup();
      out = [];
      settle({ outcome: 'too-big', elapsedMs: elapsed() });
      return;
    }
    const all = Buffer.concat(out);
    out = [all.subarray(all.length - opts.maxBytes)];
    outBytes = opts.maxBytes;
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', (c: Buffer) => {
    if (opts.mergeStderr) keep(c);
    else stderr = (stderr + c.toString()).slice(-STDERR_KEEP);
  });
  child.on('error', (error: NodeJS.ErrnoException) => settle({ outcome: 'not-started', error, elapsedMs: elapsed() }));
  child.on('close', (exitCode, signal) =>
    settle({ outcome: 'exited', exitCode, signal, stdout: stdoutNow(), stderr, elapsedMs: elapsed() }),
  );
  return { child, result, kill: timeOut };
}
