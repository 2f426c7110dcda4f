import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AnchoredClock, CLOCK_ANCHOR_FILE, monotonicMs, type ClockSources } from '../lib/clock';
import { tmpDir } from './helpers/tmp';

// The swarm's clock against a stepped wall clock: an injected wall and
// monotonic source, stepped by hand, and real files for the shared anchor.

class Stepped implements ClockSources {
  wall = 1_795_000_000_000;
  mono = 5_000_000;
  constructor(private readonly boot = 'boot-a') {}
  wallMs = () => this.wall;
  monoMs = () => this.mono;
  bootId = () => this.boot;
  /** Time passes: both clocks move. */
  pass(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
}

describe("the swarm's clock", () => {
  it('does not move when the wall clock is stepped, forward or back: ages, leases and deadlines keep their length', () => {
    const src = new Stepped();
    const clock = new AnchoredClock(src);
    const launchedAt = clock.now();
    expect(launchedAt).toBe(src.wall);
    src.pass(10_000);
    src.wall += 3_600_000; // NTP or a person steps it forward an hour
    expect(clock.now() - launchedAt).toBe(10_000);
    src.wall -= 7_200_000; // and back two
    src.pass(5_000);
    expect(clock.now() - launchedAt).toBe(15_000);
  });

  it('two processes started on either side of a step agree, through the anchor in the state folder', () => {
    const dir = tmpDir();
    const src = new Stepped();
    const first = new AnchoredClock(src);
    first.share(dir);
    expect(fs.statSync(path.join(dir, CLOCK_ANCHOR_FILE)).mode & 0o777).toBe(0o600);
    src.pass(1_000);
    src.wall += 3_600_000;
    // A daemon restarted after the step, in another process: same boot, same anchor.
    const second = new AnchoredClock(src);
    second.share(dir);
    expect(second.now()).toBe(first.now());
    // Without the shared anchor it would be an hour apart: what made the watchdog SIGKILL healthy daemons.
    expect(new AnchoredClock(src).now() - first.now()).toBe(3_600_000);
  });

  it("a previous boot's anchor is replaced; a state folder that does not exist is not made", () => {
    const dir = tmpDir();
    new AnchoredClock(new Stepped('boot-a')).share(dir);
    const after = new Stepped('boot-b');
    after.wall += 86_400_000;
    after.mono = 10;
    const clock = new AnchoredClock(after);
    clock.share(dir);
    expect(clock.now()).toBe(after.wall);
    expect(JSON.parse(fs.readFileSync(path.join(dir, CLOCK_ANCHOR_FILE), 'utf8'))).toMatchObject({ bootId: 'boot-b' });
    const missing = path.join(tmpDir(), 'not-yet');
    new AnchoredClock(new Stepped()).share(missing);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('the monotonic source is the system one: the same across processes, never going back', () => {
    const a = monotonicMs();
    const b = monotonicMs();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(a).toBeGreaterThan(0);
  });
});
