import fs from 'node:fs';
import path from 'node:path';

// Time comes from an injected clock so tests can drive the tick loop and
// backoff with fake timers instead of sleeping.
//
// The system clock is not the wall clock. Every age, lease, backoff,
// deadline and timeout in Swarm is measured on it, and a wall clock stepped
// forward an hour would make every worker look stale, kill them for their
// runtime and SIGKILL the daemons; stepped back, it would hold leases and
// backoffs an extra hour. So Swarm's time is the wall clock as it stood at
// boot plus the monotonic clock since (CLOCK_MONOTONIC, the same in every
// process of one boot, and never stepped). It reads as wall time, and is
// wall time until someone steps the clock. The anchor is shared by every
// process of a swarm through the state folder, so two daemons started on
// either side of a step still agree.

export type TimerHandle = { cancel(): void };

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

/** Milliseconds since boot, on CLOCK_MONOTONIC. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

export const CLOCK_ANCHOR_FILE = 'clock_anchor.json';

export interface ClockSources {
  wallMs(): number;
  monoMs(): number;
  bootId(): string;
}

const systemSources: ClockSources = {
  wallMs: () => Date.now(),
  monoMs: monotonicMs,
  bootId: () => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
};

/** The wall clock at boot plus the monotonic clock since; see above. */
export class AnchoredClock implements Clock {
  private anchorMs: number | null = null;

  constructor(private readonly src: ClockSources = systemSources) {}

  now(): number {
    this.anchorMs ??= this.src.wallMs() - this.src.monoMs();
    return this.anchorMs + this.src.monoMs();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  }

  /**
   * Takes the anchor this boot's first process left in the state folder, or
   * leaves its own there. A folder that does not exist yet is not made: the
   * process keeps an anchor of its own.
   */
  share(stateDir: string): boolean {
    try {
      this.shareIn(stateDir);
      return true;
    } catch {
      // A read-only folder or a full disk: this process keeps its own anchor, which is right until a step;
      // a reader such as `query` must answer all the same.
      return false;
    }
  }

  private shareIn(stateDir: string): void {
    const file = path.join(stateDir, CLOCK_ANCHOR_FILE);
    if (!fs.existsSync(stateDir)) return;
    const boot = this.src.bootId();
    const saved = readAnchor(file);
    if (saved && saved.bootId === boot) {
      this.anchorMs = saved.anchorMs;
      return;
    }
    const anchorMs = this.anchorMs ?? this.src.wallMs() - this.src.monoMs();
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = fs.openSync(
      tmp,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW,
      0o600,
    );
    try {
      fs.writeSync(fd, JSON.stringify({ bootId: boot, anchorMs }));
    } finally {
      fs.closeSync(fd);
    }
    try {
      // Whoever links first sets the anchor for the boot; the others read theirs.
      fs.linkSync(tmp, file);
      this.anchorMs = anchorMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const other = readAnchor(file);
      if (other && other.bootId === boot) this.anchorMs = other.anchorMs;
      else {
        // Last boot's: replaced.
        fs.renameSync(tmp, file);
        this.anchorMs = anchorMs;
      }
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
}

function readAnchor(file: string): { bootId: string; anchorMs: number } | null {
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile() || st.size > 4096) return null;
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as { bootId?: unknown; anchorMs?: unknown };
    return typeof v.bootId === 'string' && typeof v.anchorMs === 'number' && Number.isFinite(v.anchorMs)
      ? { bootId: v.bootId, anchorMs: v.anchorMs }
      : null;
  } catch {
    // Missing or garbage: no anchor to share.
    return null;
  }
}

export const systemClock = new AnchoredClock();

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
