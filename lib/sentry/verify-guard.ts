import { spawn } from 'node:child_process';

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

export function runVerify(argv: string[], opts: { cwd: string; env: Record<string, string>; timeoutMs: number }): Promise<VerifyResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    let out = '';
    let timedOut = false;
    const keep = (c: Buffer) => {
      out = (out + c.toString()).slice(-KEEP_BYTES);
    };
    const child = spawn(cmd as string, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs);
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, exitCode: null, signal: null, timedOut: false, output: `cannot run ${cmd}: ${err.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ ok: code === 0 && !timedOut, exitCode: code, signal, timedOut, output: out });
    });
  });
}
