import type cronModule from 'node-cron';

// A job's cron expression, read by node-cron, asked only "does this second
// match?". Firing is decided on the daemon's own ticks and clock (see
// scheduler.ts), not on node-cron's timers: the last firing lives in SQLite,
// so a restart neither repeats one nor loses a missed one, and tests drive
// time with an injected clock.

/**
 * node-cron, loaded on the first cron expression read: every daemon compiles
 * the config, and most configs have no schedule (node-cron costs ~4 MiB).
 */
function cronLib(): typeof cronModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on use, as said above
  return (require('node-cron') as { default: typeof cronModule }).default;
}

export interface CronMatcher {
  matches(atMs: number): boolean;
  /** 60 s for a 5-field expression (or seconds fixed at 0), else 1 s. */
  stepMs: number;
}

/** What is wrong with a cron expression, one line per field, or null when node-cron accepts it. */
export function cronProblem(expression: string): string | null {
  const fields = expression.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6)
    return `expected 5 fields (minute hour day month weekday) or 6 (seconds first); got ${fields}`;
  const v = cronLib().validateDetailed(expression);
  return v.valid ? null : v.errors.map((e) => `${e.field}: ${e.message}`).join('; ') || 'not a cron expression';
}

export function timezoneProblem(timezone: string): string | null {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
    return null;
  } catch {
    return `expected an IANA time zone such as "Europe/Berlin" or "UTC"; "${timezone}" is none`;
  }
}

const cache = new Map<string, CronMatcher>();

export function cronMatcher(expression: string, timezone: string | null): CronMatcher {
  const key = `${expression}\u0000${timezone ?? ''}`;
  const known = cache.get(key);
  if (known) return known;
  // createTask does not start the task: no timer is set, it is only a matcher.
  const cron = cronLib();
  const task = cron.createTask(expression, () => undefined, timezone ? { timezone } : {});
  const seconds = cron.parse(expression).second;
  const m: CronMatcher = {
    matches: (atMs) => task.match(new Date(atMs)),
    stepMs: seconds.length === 1 && seconds[0] === 0 ? 60_000 : 1000,
  };
  cache.set(key, m);
  return m;
}

/** The scan back from now is bounded: a week of minutes, or a day of seconds. */
const MAX_STEPS = 10_080 * 10;

/** The latest scheduled time in (afterMs, nowMs], or null. */
export function latestFiring(m: CronMatcher, afterMs: number, nowMs: number): number | null {
  let t = Math.floor(nowMs / m.stepMs) * m.stepMs;
  for (let i = 0; t > afterMs && i < MAX_STEPS; i++, t -= m.stepMs) if (m.matches(t)) return t;
  return null;
}
