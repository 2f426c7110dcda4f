import path from 'node:path';
import os from 'node:os';
import { PACKAGE_ROOT } from '../config/config';
import { spawnBounded, type BoundedResult, type BoundedRun } from '../spawn-bounded';

// Runs quick-check-child.js beside the watchdog's ticks: one check at a
// time, at low priority, ended with SIGKILL if it outlives its limit or the
// watchdog. The tick only starts it and reads its verdict.

const CHILD = path.join(PACKAGE_ROOT, 'lib', 'watchdog', 'quick-check-child.js');
const NICE = 10;

export type QuickCheckOutcome = { result: string; elapsedMs: number } | { error: string; elapsedMs: number };

export class QuickCheckRunner {
  private run: BoundedRun | null = null;

  get running(): boolean {
    return this.run !== null;
  }

  /** Starts a check unless one runs; `onDone` gets the verdict, or why there is none. */
  start(dbFile: string, limitMs: number, onDone: (o: QuickCheckOutcome) => void): boolean {
    if (this.run) return false;
    const run = spawnBounded([process.execPath, CHILD, dbFile], {
      timeoutMs: limitMs,
      maxBytes: 64 * 1024,
      onOverflow: 'tail',
    });
    this.run = run;
    try {
      if (run.child.pid) os.setPriority(run.child.pid, NICE);
    } catch {
      // Lowering its priority is a courtesy; the check runs the same without it.
    }
    void run.result.then((r) => {
      if (this.run === run) this.run = null;
      onDone(verdictOf(r));
    });
    return true;
  }

  stop(): void {
    this.run?.kill();
    this.run = null;
  }
}

function verdictOf(r: BoundedResult): QuickCheckOutcome {
  if (r.outcome === 'not-started') return { error: `cannot run the check: ${r.error.message}`, elapsedMs: r.elapsedMs };
  if (r.outcome === 'too-big') return { error: 'the check printed more than it may', elapsedMs: r.elapsedMs };
  if (r.outcome === 'timed-out') return { error: `ended by SIGKILL after ${r.elapsedMs}ms`, elapsedMs: r.elapsedMs };
  const last = r.stdout.toString().trim().split('\n').pop() ?? '';
  try {
    const v = JSON.parse(last) as { result?: unknown };
    if (typeof v.result === 'string') return { result: v.result, elapsedMs: r.elapsedMs };
  } catch {
    // No verdict line: the reason is below.
  }
  return {
    error: r.signal
      ? `ended by ${r.signal} after ${r.elapsedMs}ms`
      : `exited ${r.exitCode}: ${r.stderr.trim().slice(0, 500)}`,
    elapsedMs: r.elapsedMs,
  };
}
