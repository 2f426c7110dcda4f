// How long appends to the event log take in this process, lock wait
// included, as a histogram: each daemon keeps one and writes it to its state
// file, and operator-gateway serves them all as swarm_event_append_seconds.

/** Upper bounds, in seconds: a free lock is well under a millisecond, a queue of six writers a few. */
export const APPEND_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10] as const;

export interface AppendHistogram {
  /** Upper bound of each bucket, in seconds. */
  le: number[];
  /** Appends that took at most le[i], cumulative as Prometheus counts them. */
  counts: number[];
  sumSeconds: number;
  count: number;
}

export class AppendTimings {
  private readonly counts: number[] = APPEND_BUCKETS_S.map(() => 0);
  private sum = 0;
  private n = 0;

  observe(seconds: number): void {
    this.n += 1;
    this.sum += seconds;
    const i = APPEND_BUCKETS_S.findIndex((le) => seconds <= le);
    if (i >= 0) this.counts[i] = (this.counts[i] ?? 0) + 1;
  }

  snapshot(): AppendHistogram {
    let running = 0;
    return {
      le: [...APPEND_BUCKETS_S],
      counts: this.counts.map((c) => (running += c)),
      sumSeconds: Math.round(this.sum * 1e6) / 1e6,
      count: this.n,
    };
  }
}
