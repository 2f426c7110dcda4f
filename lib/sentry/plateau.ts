// A search that stops improving burns a night. The tracker follows the
// `metric` a worker reports in its progress JSON: an update that beats the
// best by at least minDelta (in the job's direction) is an improvement;
// `patience` updates or `within` time without one is a plateau. Reaching
// `target` (within `tolerance`) is convergence: the task is done.

export interface PlateauTracker {
  best: number | null;
  updatesSinceImprovement: number;
  lastImprovementAt: number | null;
}

export const newTracker = (): PlateauTracker => ({ best: null, updatesSinceImprovement: 0, lastImprovementAt: null });

export interface PlateauRule {
  direction: 'max' | 'min';
  minDelta: number;
  patience: number | null;
  withinMs: number | null;
  target?: number | null;
  tolerance?: number;
}

export function trackMetric(t: PlateauTracker, rule: PlateauRule, metric: number, now: number): PlateauTracker {
  const improved =
    t.best === null ||
    (rule.direction === 'max'
      ? metric >= t.best + rule.minDelta && metric > t.best
      : metric <= t.best - rule.minDelta && metric < t.best);
  if (improved) return { best: metric, updatesSinceImprovement: 0, lastImprovementAt: now };
  return { ...t, updatesSinceImprovement: t.updatesSinceImprovement + 1 };
}

export function plateaued(t: PlateauTracker, rule: PlateauRule, now: number): string | null {
  if (t.best === null) return null;
  if (rule.patience !== null && t.updatesSinceImprovement >= rule.patience) {
    return `metric has not improved by ${rule.minDelta} in ${t.updatesSinceImprovement} updates (best ${t.best})`;
  }
  if (rule.withinMs !== null && t.lastImprovementAt !== null && now - t.lastImprovementAt >= rule.withinMs) {
    return `metric has not improved by ${rule.minDelta} in ${Math.round((now - t.lastImprovementAt) / 1000)}s (best ${t.best})`;
  }
  return null;
}

/**
 * Convergence, as the tuning loop stopped: the metric reached the target,
 * within the tolerance, in the job's direction. Not a failure: the task is
 * done.
 */
export function converged(metric: number, rule: PlateauRule): string | null {
  if (rule.target === undefined || rule.target === null) return null;
  const tol = rule.tolerance ?? 0;
  const reached = rule.direction === 'max' ? metric >= rule.target - tol : metric <= rule.target + tol;
  return reached ? `metric ${metric} reached the target ${rule.target}${tol ? ` (tolerance ${tol})` : ''}` : null;
}
