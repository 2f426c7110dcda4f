import crypto from 'node:crypto';
import type { CompiledNotify } from '../config/gateway-schema';
import type { StoredEvent } from '../event-kinds';

// What one delivery is, as pure functions: the body in the endpoint's
// format, its headers (the event's seq, and a signature when the endpoint
// has a secret), and how long to wait after a failed attempt.

export interface Delivery {
  body: string;
  headers: Record<string, string>;
}

/** The `json` format: the event as the log holds it, with the message lifted out of data. */
export function jsonPayload(e: StoredEvent, swarm: string): Record<string, unknown> {
  return {
    swarm,
    seq: e.seq,
    ts: e.ts,
    runId: e.runId,
    kind: e.kind,
    target: e.target,
    severity: e.severity,
    message: typeof e.data.message === 'string' ? e.data.message : null,
    data: e.data,
  };
}

const SLACK_MARK: Record<string, string> = {
  critical: ':rotating_light:',
  error: ':red_circle:',
  warn: ':warning:',
  info: ':information_source:',
  debug: ':mag:',
};

/** The `slack` format: a Slack incoming webhook's body, one line of mrkdwn with the event under it. */
export function slackPayload(e: StoredEvent, swarm: string): Record<string, unknown> {
  const message = typeof e.data.message === 'string' ? e.data.message : e.kind;
  const line = `${SLACK_MARK[e.severity] ?? ''} *${swarm}* \`${e.kind}\` on \`${e.target}\`: ${message}`.trim();
  return {
    text: line,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: line } },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `seq ${e.seq} · run ${e.runId} · ${e.ts}` }],
      },
    ],
  };
}

export function signature(body: string, secret: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function delivery(ep: CompiledNotify, e: StoredEvent, swarm: string, secret: string | null): Delivery {
  const body = JSON.stringify(ep.format === 'slack' ? slackPayload(e, swarm) : jsonPayload(e, swarm));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'swarm-notify',
    'x-swarm-event-seq': String(e.seq),
    'x-swarm-event-kind': e.kind,
  };
  if (secret !== null) headers['x-swarm-signature'] = signature(body, secret);
  return { body, headers };
}

/**
 * The wait after the `failures`-th failed attempt: the delay doubled each
 * time up to maxDelay, then "equal jitter" (half of it fixed, half random),
 * so endpoints that failed together do not all come back at once, and no
 * wait is shorter than half its step.
 */
export function retryDelayMs(failures: number, retry: CompiledNotify['retry'], random: () => number): number {
  const step = Math.min(retry.maxDelayMs, retry.delayMs * 2 ** Math.max(0, failures - 1));
  return Math.round(step / 2 + random() * (step / 2));
}
