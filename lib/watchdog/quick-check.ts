import path from 'node:path';
import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { PACKAGE_ROOT } from '../config';

// Runs quick-check-child.js beside the watchdog's ticks: one check at a
// time, at low priority, ended with SIGKILL if it outlives its limit or the
// watchdog. The tick only starts it and reads its verdict.

const CHILD = path.join(PACKAGE_ROOT, 'lib', 'watchdog', 'quick-check-child.js');
const NICE = 10;

export type QuickCheckOutcome = { result: string; elapsedMs: number } | { error: string; elapsedMs: number };

export class QuickCheckRunner {
  private child: ChildProcess | null = null;

  get running(): boolean {
    return this.child !== null;
  }

  /** Starts a check unless one runs; `onDone` gets the verdict, or why there is none. */
  start(dbFile: string, limitMs: number, onDone: (o: QuickCheckOutcome) => void): boolean {
    if (this.child) return false;
    const started = performance.now();
    const child = spawn(process.execPath, [CHILD, dbFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    try {
      if (child.pid) os.setPriority(child.pid, NICE);
    } catch {
      // Lowering its priority is a courtesy; the check runs the same without it.
    }
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-64 * 1024)));
    child.stderr?.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4096)));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    const finish = (o: QuickCheckOutcome) => {
      clearTimeout(timer);
      if (this.child === child) this.child = null;
      onDone(o);
    };
    child.on('error', (e) => finish({ error: `cannot run the check: ${e.message}`, elapsedMs: performance.now() - started }));
    child.on('close', (code, signal) => {
      const elapsedMs = performance.now() - started;
      const last = out.trim().split('\n').pop() ?? '';
      let verdict: string | null = null;
      try {
        const v = JSON.parse(last) as { result?: unknown };
        if (typeof v.result === 'string') verdict = v.result;
      } catch {
        // No verdict line: the reason is below.
      }
      if (verdict !== null) finish({ result: verdict, elapsedMs });
      else finish({ error: signal ? `ended by ${signal} after ${Math.round(elapsedMs)}ms` : `exited ${code}: ${err.trim().slice(0, 500)}`, elapsedMs });
    });
    return true;
  }

  stop(): void {
    this.child?.kill('SIGKILL');
    this.child = null;
  }
}
