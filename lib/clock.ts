// Time comes from an injected clock so tests can drive the tick loop and
// backoff with fake timers instead of sleeping.

export type TimerHandle = { cancel(): void };

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
