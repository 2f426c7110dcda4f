import { errorMessage } from '../errors';
import type { Delivery } from './message';

// One POST of a delivery, bounded by its timeout and by an abort from the
// owner (a daemon stopping). Never throws: a refused connection, a timeout
// and a 500 are all answers the caller counts as a failed attempt.

export interface PostResult {
  ok: boolean;
  /** The HTTP status; null when no response came. */
  status: number | null;
  /** Why it failed, in words; null when it did not. */
  error: string | null;
  /** The start of the response body, for `swarmctl notify test`. */
  body: string;
}

const BODY_KEPT = 2048;

export async function post(url: string, d: Delivery, timeoutMs: number, abort?: AbortSignal): Promise<PostResult> {
  // One controller and a timer we own, not AbortSignal.any() over AbortSignal.timeout(): a composite holds
  // its sources weakly, and in a daemon that collects often the timeout signal was collected before it
  // fired, leaving a POST to a silent endpoint hanging for ever.
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, timeoutMs);
  const onAbort = () => ac.abort();
  abort?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: d.headers,
      body: d.body,
      signal: ac.signal,
      redirect: 'manual',
    });
    const text = (await res.text()).slice(0, BODY_KEPT);
    return res.ok
      ? { ok: true, status: res.status, error: null, body: text }
      : { ok: false, status: res.status, error: `HTTP ${res.status}`, body: text };
  } catch (err) {
    // fetch says only "fetch failed"; the reason (ECONNREFUSED, a TLS error) is its cause. The URL is never
    // part of it: a Slack webhook's URL is itself the secret.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = timedOut ? `no answer within ${timeoutMs}ms` : (cause?.code ?? cause?.message ?? errorMessage(err));
    return { ok: false, status: null, error: why, body: '' };
  } finally {
    clearTimeout(timer);
    abort?.removeEventListener('abort', onAbort);
  }
}
