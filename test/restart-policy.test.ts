import { describe, expect, it } from 'vitest';
import { backoffDelayMs, emptyHistory, onFailure, onHealthy, type RestartPolicy } from '../lib/sentry/restart-budget';
import { classifyExit } from '../lib/sentry/classify';
import { compileConfig } from '../lib/config';

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
  const rules = compileConfig({ name: 'x', jobs: { j: { command: ['x'], failures: [{ match: '/CUDA (error|out of memory)/i', class: 'worker_oom', action: 'restart' }] } } }, 'c.json', {}).jobs.j?.failures ?? [];
  const base = { exitCode: 1, signal: null, logTail: '', lastRssBytes: null, memoryLimitBytes: null, kernelOomKilled: false };

  it('user rules first, then deterministic patterns, then OOM, then crash', () => {
    expect(classifyExit(rules, { ...base, logTail: 'SyntaxError x\nRuntimeError: CUDA out of memory' })).toMatchObject({ class: 'worker_oom', evidence: { rule: '/CUDA (error|out of memory)/i' } });
    expect(classifyExit(rules, { ...base, logTail: "ModuleNotFoundError: No module named 'optuna'" })).toMatchObject({ class: 'deterministic_failure', action: 'quarantine' });
    expect(classifyExit(rules, { ...base, logTail: 'ImportError: cannot import name x' }).class).toBe('deterministic_failure');
    expect(classifyExit(rules, { ...base, exitCode: null, signal: 'SIGKILL', lastRssBytes: 950, memoryLimitBytes: 1000 }).class).toBe('worker_oom');
    expect(classifyExit(rules, { ...base, exitCode: null, signal: 'SIGKILL', kernelOomKilled: true }).class).toBe('worker_oom');
    expect(classifyExit(rules, { ...base, exitCode: null, signal: 'SIGKILL', lastRssBytes: 100, memoryLimitBytes: 1000 })).toMatchObject({ class: 'worker_crashed', evidence: { signal: 'SIGKILL' } });
    expect(classifyExit(rules, { ...base, exitCode: null, signal: 'SIGSEGV' })).toMatchObject({ class: 'worker_crashed', evidence: { exitCode: null, signal: 'SIGSEGV' } });
  });
});
