import { z } from 'zod';
import { isSecretName } from '../daemon-env';
import { EVENT_KINDS, FAILURE_CLASSES } from '../event-kinds';
import { parseDurationMs } from '../duration';
import { Duration, Name } from './primitives';

// operator-gateway's sections, `notify` (where a person is told, and of what)
// and `http` (where it serves metrics). Their own file
// because schema.ts is the rest of the config already.

/** Every kind an endpoint can be told of: the kinds, and detect.CLASS for each failure class. */
export const NOTIFIABLE_KINDS: readonly string[] = [...EVENT_KINDS, ...FAILURE_CLASSES.map((c) => `detect.${c}`)];

/** `on` names a kind, or a prefix of kinds (`escalation`, `detect.`): the event's kind is it, or starts with it and a dot. */
export function kindMatches(entry: string, kind: string): boolean {
  if (kind === entry) return true;
  const prefix = entry.endsWith('.') ? entry : `${entry}.`;
  return kind.startsWith(prefix);
}

export const DEFAULT_NOTIFY_ON = ['escalation.raised', 'run.degraded', 'run.completed'];

const RetrySchema = z.strictObject({
  attempts: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(8)
    .meta({ description: 'Attempts at one event before it is given up (notify.failed).' }),
  delay: Duration.default('1s').meta({ description: 'The wait after the first failed attempt; it doubles.' }),
  maxDelay: Duration.default('5m').meta({ description: 'The longest wait between two attempts.' }),
});

export const NotifyEndpointSchema = z.strictObject({
  name: Name.meta({ description: 'The endpoint, as events, status and `swarmctl notify test NAME` name it.' }),
  url: z
    .url({ protocol: /^https?$/, message: 'expected an http:// or https:// URL' })
    .meta({ description: 'Where each event is POSTed.' }),
  on: z
    .array(
      z.string().refine((e) => NOTIFIABLE_KINDS.some((k) => kindMatches(e, k)), {
        message:
          'expected an event kind or a prefix of kinds (docs/events.md), such as "escalation.raised" or "detect"',
      }),
    )
    .min(1)
    .default(DEFAULT_NOTIFY_ON)
    .meta({
      description:
        'Event kinds, or prefixes of kinds ("detect", "escalation."), that are sent here. Default: escalation.raised, run.degraded, run.completed.',
    }),
  format: z.enum(['json', 'slack']).default('json').meta({
    description:
      '"json": the event (seq, ts, runId, kind, target, severity, message, data); "slack": the body of a Slack incoming webhook.',
  }),
  secretEnv: z
    .string()
    .refine(isSecretName, {
      message:
        'expected the name of an environment variable with KEY, TOKEN, SECRET or PASSWORD in it: only those are kept out of PM2 and the logs',
    })
    .optional()
    .meta({
      description:
        'The environment variable whose value signs each body (HMAC-SHA256, header X-Swarm-Signature: sha256=<hex>). Unset: unsigned.',
    }),
  timeout: Duration.default('10s').meta({ description: 'One delivery attempt is given up after this.' }),
  retry: RetrySchema.default(RetrySchema.parse({})).meta({
    description: 'Retries of a failed delivery: exponential backoff with jitter, a bounded number of times.',
  }),
});

export const HttpSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1').meta({
      description:
        'The address to listen on. Other than 127.0.0.1, ::1 or localhost, every read needs the dashboard token too.',
    }),
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .meta({ description: 'The port; 0 takes a free one, named in operator_gateway_state.json `http.url`.' }),
  })
  .optional()
  .meta({
    description:
      'operator-gateway serves the dashboard (/) and GET /metrics (Prometheus text format) here. Unset: nothing listens. Changed by a reload, it listens again at once.',
  });

export const NotifySchema = z
  .array(NotifyEndpointSchema)
  .default([])
  .superRefine((eps, ctx) => {
    const seen = new Set<string>();
    eps.forEach((e, i) => {
      if (seen.has(e.name))
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `expected a unique name; "${e.name}" is used twice`,
        });
      seen.add(e.name);
    });
  })
  .meta({
    description:
      'Webhooks a person is told through. Each event whose kind matches is POSTed once, in seq order, with the header X-Swarm-Event-Seq; a failed delivery is retried, then recorded as notify.failed.',
  });

export interface CompiledHttp {
  host: string;
  port: number;
}

export interface CompiledNotify {
  name: string;
  url: string;
  on: string[];
  format: 'json' | 'slack';
  /** The variable whose value signs each body; null: unsigned. */
  secretEnv: string | null;
  timeoutMs: number;
  retry: { attempts: number; delayMs: number; maxDelayMs: number };
}

export function compileNotify(eps: z.output<typeof NotifySchema>): CompiledNotify[] {
  const ms = (d: string | number) => parseDurationMs(d) as number;
  return eps.map((e) => ({
    name: e.name,
    url: e.url,
    on: e.on,
    format: e.format,
    secretEnv: e.secretEnv ?? null,
    timeoutMs: ms(e.timeout),
    retry: { attempts: e.retry.attempts, delayMs: ms(e.retry.delay), maxDelayMs: ms(e.retry.maxDelay) },
  }));
}
