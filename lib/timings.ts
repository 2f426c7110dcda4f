// How long something takes in this process, as a histogram: each daemon
// keeps one for its event-log appends (lock wait included) and one for its
// ticks, writes them to its state file, and operator-gateway serves them
// all (swarm_event_append_seconds, swarm_daemon_tick_seconds).

/** Upper bounds, in seconds: a free lock is well under a millisecond, a queue of six writers a few. */
export const APPEND_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10] as const;
/** A tick: a few milliseconds idle, the target at 200 workers is 250 ms at p99. */
export const TICK_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

export interface Histogram {
  /** Upper bound of each bucket, in seconds. */
  le: number[];
  /** Observations that took at most le[i], cumulative as Prometheus counts them. */
  counts: number[];
  sumSeconds: number;
  count: number;
}

export class Timings {
  private readonly counts: number[];
  private sum = 0;
  private n = 0;

  constructor(private readonly buckets: readonly number[] = APPEND_BUCKETS_S) {
    this.counts = buckets.map(() => 0);
  }

  observe(seconds: number): void {
    this.n += 1;
    this.sum += seconds;
    const i = this.buckets.findIndex((le) => seconds <= le);
    if (i >= 0) this.counts[i] = (this.counts[i] ?? 0) + 1;
  }

  snapshot(): Histogram {
    let running = 0;
    return {
      le: [...this.buckets],
      counts: this.counts.map((c) => (running += c)),
      sumSeconds: Math.round(this.sum * 1e6) / 1e6,
      count: this.n,
    };
  }
}

/** The bucket bound under which fraction `q` of the observations fall (as histogram_quantile, without interpolation); null when empty, Infinity past the last bucket. */
export function quantileBound(h: Histogram, q: number): number | null {
  if (h.count === 0) return null;
  const want = q * h.count;
  const i = h.counts.findIndex((c) => c >= want);
  return i < 0 ? Infinity : (h.le[i] ?? Infinity);
}

/** Seconds of CPU this process has used (user and system): a clock that stops while the process waits or is descheduled. */
export const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** `target` with the time each of its methods takes (until its promise settles), on `clock`, handed to `add`. */
export function timedCalls<T extends object>(target: T, add: (seconds: number) => void, clock: () => number): T {
  return new Proxy(target, {
    get(t, prop) {
      const v: unknown = Reflect.get(t, prop, t);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const began = clock();
        const done = () => add(clock() - began);
        const r: unknown = v.apply(t, args);
        if (r instanceof Promise) return r.finally(done);
        done();
        return r;
      };
    },
  });
}
