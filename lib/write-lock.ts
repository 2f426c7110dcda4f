import type { Db } from './db';

// Taking SQLite's write lock for the event log's hot path. SQLite's own busy
// handler sleeps on a fixed ladder (1, 2, 5, 10, 15 … 100 ms) and every
// waiter retries in step, so six writers on two cores spend the lock's time
// waking each other up. Here each waiter backs off exponentially with
// jitter, from 1 ms to 20 ms: the holder gets the CPU and runs several
// commits in a row, which measured 60–70 % more appends per second than the
// ladder with 6 writers (docs/PERFORMANCE.md). Shorter first waits measured
// worse: the wake-ups steal the holder's core. The connection's busy timeout
// stays the deadline, and its own handler applies again once the lock is
// taken.

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms`: the event log's writers wait inside a synchronous append. */
export function blockFor(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
const FIRST_WAIT_MS = 1;
const MAX_WAIT_MS = 20;

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED';
}

export class WriteLock {
  private readonly timeoutMs: number;
  private readonly noWait;
  private readonly restore;
  private readonly tx;
  private inside = false;

  constructor(db: Db) {
    this.timeoutMs = Math.max(0, Math.floor(Number(db.pragma('busy_timeout', { simple: true })) || 0));
    this.noWait = db.prepare('PRAGMA busy_timeout = 0');
    this.restore = db.prepare(`PRAGMA busy_timeout = ${this.timeoutMs}`);
    this.tx = db.transaction((fn: () => unknown) => {
      // The lock is ours: from here on the connection's own timeout applies.
      this.inside = true;
      this.restore.run();
      return fn();
    });
  }

  /** Runs `fn` inside BEGIN IMMEDIATE, retrying only while the lock itself is busy. */
  run<T>(fn: () => T): T {
    const deadline = performance.now() + this.timeoutMs;
    let waitMs = FIRST_WAIT_MS;
    for (;;) {
      this.inside = false;
      this.noWait.run();
      try {
        return this.tx.immediate(fn) as T;
      } catch (err) {
        if (this.inside || !isBusy(err) || performance.now() >= deadline) throw err;
      } finally {
        if (!this.inside) this.restore.run();
      }
      blockFor(waitMs * (0.5 + Math.random()));
      waitMs = Math.min(MAX_WAIT_MS, waitMs * 2);
    }
  }
}
