// Restart policy: exponential backoff (delay doubling up to maxDelay) and a
// budget of restarts per sliding window. Both reset only after the worker has
// been verified healthy for healthyAfterMs, never after mere uptime, so a
// worker that runs a while and then hangs again still runs out of budget.

export interface RestartPolicy {
  delayMs: number;
  maxDelayMs: number;
  budget: number;
  windowMs: number;
  healthyAfterMs: number;
}

export interface RestartHistory {
  /** Times of restarts inside the current budget. */
  restartTimes: number[];
  /** Failures since the last verified-healthy period; drives the exponent. */
  streak: number;
  /** When the current run was verified healthy, or null. */
  healthySince: number | null;
}

export const emptyHistory = (): RestartHistory => ({ restartTimes: [], streak: 0, healthySince: null });

export function backoffDelayMs(policy: RestartPolicy, streak: number): number {
  const exp = Math.max(0, streak - 1);
  // 2^exp overflows to Infinity long before it matters; min() caps it.
  return Math.min(policy.maxDelayMs, policy.delayMs * 2 ** Math.min(exp, 40));
}

export function restartsInWindow(policy: RestartPolicy, h: RestartHistory, now: number): number {
  return h.restartTimes.filter((t) => now - t < policy.windowMs).length;
}

export type RestartDecision = { restart: true; delayMs: number } | { restart: false; reason: string };

/** Called on each failure: either a restart after a delay, or the budget is spent. */
export function onFailure(
  policy: RestartPolicy,
  h: RestartHistory,
  now: number,
): { decision: RestartDecision; history: RestartHistory } {
  const streak = h.streak + 1;
  const used = restartsInWindow(policy, h, now);
  if (used >= policy.budget) {
    return {
      decision: {
        restart: false,
        reason: `restart budget spent: ${used} restarts in the last ${Math.round(policy.windowMs / 1000)}s (budget ${policy.budget})`,
      },
      history: { ...h, streak, healthySince: null },
    };
  }
  return {
    decision: { restart: true, delayMs: backoffDelayMs(policy, streak) },
    history: {
      restartTimes: [...h.restartTimes.filter((t) => now - t < policy.windowMs), now],
      streak,
      healthySince: null,
    },
  };
}

/** Called each tick while the worker is verified healthy. */
export function onHealthy(policy: RestartPolicy, h: RestartHistory, now: number): RestartHistory {
  if (h.healthySince === null) return { ...h, healthySince: now };
  if (now - h.healthySince >= policy.healthyAfterMs && (h.streak > 0 || h.restartTimes.length > 0)) {
    return { restartTimes: [], streak: 0, healthySince: h.healthySince };
  }
  return h;
}
