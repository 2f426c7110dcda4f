import { describe, expect, it } from 'vitest';
import { backoffDelayMs, emptyHistory, onFailure, onHealthy, type RestartPolicy } from '../lib/sentry/restart-budget';
import { classifyExit } from '../lib/sentry/classify';
import { compileConfig } from '../lib/config/config';
import { converged, newTracker, plateaued, trackMetric } from '../lib/sentry/plateau';

const policy: RestartPolicy = { delayMs: 1000, maxDelayMs: 8000, budget: 3, windowMs: 60_000, healthyAfterMs: 30_000 };

describe('restart policy', () => {
  it('doubles the delay up to maxDelay', () => {
    expect([1, 2, 3, 4, 5, 60].map((s) => backoffDelayMs(policy, s))).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
  });

  it('spends the budget within the window, then says no', () => {
    let h = emptyHistory();
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = onFailure(policy, h, 1000 * i);
      expect(r.decision.restart).toBe(true);
      if (r.decision.restart) delays.push(r.decision.delayMs);
      h = r.history;
    }
    expect(delays).toEqual([1000, 2000, 4000]);
    const last = onFailure(policy, h, 5000);
    expect(last.decision).toMatchObject({ restart: false });
    // Outside the window, old restarts no longer count.
    expect(onFailure(policy, h, 70_000).decision.restart).toBe(true);
  });

  it('resets only after a verified healthy period, not after mere uptime', () => {
    let h = onFailure(policy, emptyHistory(), 0).history;
    h = onFailure(policy, h, 1000).history;
    expect(h.streak).toBe(2);
    h = onHealthy(policy, h, 10_000);
    h = onHealthy(policy, h, 39_000);
    expect(h.streak).toBe(2);
    h = onHealthy(policy, h, 40_001);
    expect(h).toMatchObject({ streak: 0, restartTimes: [] });
    // A failure in between starts the healthy clock again.
    let g = onFailure(policy, emptyHistory(), 0).history;
    g = onHealthy(policy, g, 1000);
    g = onFailure(policy, g, 20_000).history;
    g = onHealthy(policy, g, 35_000);
    g = onHealthy(policy, g, 45_000);
    expect(g.streak).toBe(2);
  });
});

describe('exit classification', () => {
  const rules =
    compileConfig(
      {
        name: 'x',
        jobs: {
          j: {
            command: ['x'],
            failures: [{ match: '/CUDA (error|out of memory)/i', class: 'worker_oom', action: 'restart' }],
          },
        },
      },
      'c.json',
      {},
    ).jobs.j?.failures ?? [];
  const base = {
    exitCode: 1,
    signal: null,
    logTail: '',
    lastRssBytes: null,
    memoryLimitBytes: null,
    kernelOomKilled: false,
  };

  it('user rules first, then deterministic patterns, then OOM, then crash', () => {
    expect(classifyExit(rules, { ...base, logTail: 'SyntaxError x\nRuntimeError: CUDA out of memory' })).toMatchObject({
      class: 'worker_oom',
      evidence: { rule: '/CUDA (error|out of memory)/i' },
    });
    expect(classifyExit(rules, { ...base, logTail: "ModuleNotFoundError: No module named 'optuna'" })).toMatchObject({
      class: 'deterministic_failure',
      action: 'quarantine',
    });
    expect(classifyExit(rules, { ...base, logTail: 'ImportError: cannot import name x' }).class).toBe(
      'deterministic_failure',
    );
    expect(
      classifyExit(rules, { ...base, exitCode: null, signal: 'SIGKILL', lastRssBytes: 950, memoryLimitBytes: 1000 })
        .class,
    ).toBe('worker_oom');
    expect(classifyExit(rules, { ...base, exitCode: null, signal: 'SIGKILL', kernelOomKilled: true }).class).toBe(
      'worker_oom',
    );
    expect(
      classifyExit(rules, { ...base, exitCode: null, signal: 'SIGKILL', lastRssBytes: 100, memoryLimitBytes: 1000 }),
    ).toMatchObject({ class: 'worker_crashed', evidence: { signal: 'SIGKILL' } });
    expect(classifyExit(rules, { ...base, exitCode: null, signal: 'SIGSEGV' })).toMatchObject({
      class: 'worker_crashed',
      evidence: { exitCode: null, signal: 'SIGSEGV' },
    });
  });
});

describe('plateau tracker', () => {
  it('counts updates and time without an improvement of minDelta, in either direction', () => {
    const max = { direction: 'max' as const, minDelta: 0.5, patience: 3, withinMs: null };
    let t = newTracker();
    for (const [i, m] of [1, 2, 2.2, 2.4, 2.3].entries()) t = trackMetric(t, max, m, i * 1000);
    expect(t.best).toBe(2);
    expect(plateaued(t, max, 5000)).toMatch(/3 updates/);
    const min = { direction: 'min' as const, minDelta: 0.1, patience: null, withinMs: 10_000 };
    let u = newTracker();
    u = trackMetric(u, min, 5, 0);
    u = trackMetric(u, min, 4.5, 1000);
    u = trackMetric(u, min, 4.45, 2000);
    expect(u.best).toBe(4.5);
    expect(plateaued(u, min, 10_999)).toBeNull();
    expect(plateaued(u, min, 11_000)).toMatch(/in 10s/);
  });
});

describe('convergence', () => {
  it("the metric reaching target within tolerance, in the job's direction, is converged; no target, never", () => {
    const max = {
      direction: 'max' as const,
      minDelta: 0,
      patience: null,
      withinMs: null,
      target: 0.9,
      tolerance: 0.01,
    };
    expect(converged(0.88, max)).toBeNull();
    expect(converged(0.89, max)).toMatch(/reached the target 0.9 \(tolerance 0.01\)/);
    expect(converged(0.95, max)).not.toBeNull();
    const min = { ...max, direction: 'min' as const, target: 0.05, tolerance: 0 };
    expect(converged(0.06, min)).toBeNull();
    expect(converged(0.05, min)).not.toBeNull();
    expect(converged(1000, { ...max, target: null })).toBeNull();
  });
});

describe('lock conflicts', () => {
  it("database is locked and DuckDB's conflicting lock are lock_conflict, with the holder pid", () => {
    const base = { exitCode: 1, signal: null, lastRssBytes: null, memoryLimitBytes: null, kernelOomKilled: false };
    expect(classifyExit([], { ...base, logTail: 'sqlite3.OperationalError: database is locked' })).toMatchObject({
      class: 'lock_conflict',
      evidence: { holderPid: null },
    });
    const duck =
      'IO Error: Could not set lock on file "a.duckdb": Conflicting lock is held in /usr/bin/python3.11 (PID 31337) by user me.';
    expect(classifyExit([], { ...base, logTail: duck })).toMatchObject({
      class: 'lock_conflict',
      evidence: { holderPid: 31337 },
    });
  });
});
