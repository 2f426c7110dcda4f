import crypto from 'node:crypto';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileConfig } from '../lib/config/config';
import { kindMatches } from '../lib/config/gateway-schema';
import { ConfigError } from '../lib/errors';
import { readEvents } from '../lib/event-log';
import type { StoredEvent } from '../lib/event-kinds';
import { delivery, retryDelayMs } from '../lib/notify/message';
import { Notifier } from '../lib/notify/notifier';
import { daemonContext } from './helpers/daemon-context';
import { freePort } from './helpers/ports';
import { tmpDir, waitFor } from './helpers/tmp';
import { WebhookReceiver } from './helpers/webhook-receiver';

// Notifications without PM2: the pure parts (which kinds an endpoint gets,
// its body, signature and backoff), then the Notifier on a ManualClock
// against a real HTTP receiver and a real swarm.db. The whole daemon, killed
// mid-retry under real PM2, is test/notify-swarm.test.ts.

const receivers: WebhookReceiver[] = [];
afterAll(async () => {
  for (const r of receivers) await r.close();
});

function config(notify: unknown[]) {
  const dir = tmpDir('swarm-notify-');
  return compileConfig(
    { name: 'tell', stateDir: path.join(dir, 'state'), jobs: { j: { command: ['true'] } }, notify },
    path.join(dir, 'swarm.config.json'),
    {},
  );
}

const configProblem = (notify: unknown[]): string => {
  try {
    config(notify);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return '';
};

describe('notify, the pure parts', () => {
  const event: StoredEvent = {
    seq: 42,
    ts: '2026-11-30T03:00:00.000Z',
    runId: 'r-1',
    source: 'worker-sentry',
    kind: 'escalation.raised',
    target: 'worker:w-1',
    severity: 'error',
    actionId: null,
    hash: 'h',
    data: { reason: 'budget spent', message: 'worker w-1 quarantined' },
  };

  it('on: a kind, or a prefix of kinds at a dot', () => {
    expect(kindMatches('escalation.raised', 'escalation.raised')).toBe(true);
    expect(kindMatches('detect', 'detect.worker_crashed')).toBe(true);
    expect(kindMatches('detect.', 'detect.worker_crashed')).toBe(true);
    expect(kindMatches('run', 'run.completed')).toBe(true);
    expect(kindMatches('run.c', 'run.completed')).toBe(false);
    expect(kindMatches('escalation.raised', 'escalation.resolved')).toBe(false);
  });

  it('the config: defaults, and each mistake refused naming its field', () => {
    const ep = config([{ name: 'a', url: 'http://127.0.0.1:9/x' }]).notify[0];
    expect(ep).toMatchObject({
      on: ['escalation.raised', 'run.degraded', 'run.completed'],
      format: 'json',
      secretEnv: null,
      timeoutMs: 10_000,
      retry: { attempts: 8, delayMs: 1000, maxDelayMs: 300_000 },
    });
    expect(configProblem([{ name: 'a', url: 'ftp://x/y' }])).toMatch(/notify\.0\.url/);
    expect(configProblem([{ name: 'a', url: 'http://x/', on: ['escalation.rased'] }])).toMatch(/notify\.0\.on\.0/);
    expect(configProblem([{ name: 'a', url: 'http://x/', secretEnv: 'HOOK_SIG' }])).toMatch(
      /notify\.0\.secretEnv.*KEY, TOKEN, SECRET or PASSWORD/,
    );
    expect(
      configProblem([
        { name: 'a', url: 'http://x/' },
        { name: 'a', url: 'http://y/' },
      ]),
    ).toMatch(/notify\.1\.name/);
    expect(configProblem([{ name: 'a', url: 'http://x/', format: 'xml' }])).toMatch(/notify\.0\.format/);
  });

  it('json carries the event; slack is an incoming-webhook body; the signature is HMAC-SHA256 of the body', () => {
    const [json, slack] = config([
      { name: 'j', url: 'http://x/', secretEnv: 'HOOK_SECRET' },
      { name: 's', url: 'http://x/', format: 'slack' },
    ]).notify;
    const d = delivery(json!, event, 'tell', 'sekrit');
    expect(JSON.parse(d.body)).toEqual({
      swarm: 'tell',
      seq: 42,
      ts: event.ts,
      runId: 'r-1',
      kind: 'escalation.raised',
      target: 'worker:w-1',
      severity: 'error',
      message: 'worker w-1 quarantined',
      data: event.data,
    });
    expect(d.headers['x-swarm-event-seq']).toBe('42');
    const mac = crypto.createHmac('sha256', 'sekrit').update(d.body).digest('hex');
    expect(d.headers['x-swarm-signature']).toBe(`sha256=${mac}`);
    expect(d.body).not.toContain('sekrit');
    const s = delivery(slack!, event, 'tell', null);
    expect(s.headers['x-swarm-signature']).toBeUndefined();
    const body = JSON.parse(s.body) as { text: string; blocks: unknown[] };
    expect(body.text).toContain('*tell* `escalation.raised` on `worker:w-1`: worker w-1 quarantined');
    expect(body.blocks.length).toBeGreaterThan(0);
  });

  it('backoff doubles to its cap, with jitter that never takes it under half a step', () => {
    const retry = { attempts: 8, delayMs: 1000, maxDelayMs: 5000 };
    expect(retryDelayMs(1, retry, () => 0)).toBe(500);
    expect(retryDelayMs(1, retry, () => 1)).toBe(1000);
    expect(retryDelayMs(3, retry, () => 1)).toBe(4000);
    expect(retryDelayMs(6, retry, () => 1)).toBe(5000);
    expect(retryDelayMs(6, retry, () => 0)).toBe(2500);
  });
});

/** A Notifier over a test's daemon context, its endpoints told of everything after `start`. */
function notifier(
  ctx: ReturnType<typeof daemonContext>,
  start: number,
  secret: (k: string) => string | undefined,
  random: number,
): Notifier {
  return new Notifier({
    db: ctx.db,
    log: ctx.log,
    clock: ctx.clock,
    logger: ctx.logger,
    swarm: 'tell',
    startSeq: () => start,
    secret,
    random: () => random,
  });
}

describe('Notifier, on a ManualClock against a real receiver', () => {
  it('fail, fail, fail, hang past the timeout, accept: each retry only once due, then the next event at once, in seq order, signed', async () => {
    const receiver = new WebhookReceiver(['fail', 'fail', 'fail', 'hang'], 'sekrit');
    receivers.push(receiver);
    const url = await receiver.listen();
    const cfg = config([
      {
        name: 'hook',
        url,
        on: ['escalation.raised', 'run.completed'],
        secretEnv: 'HOOK_SECRET',
        timeout: '300ms',
        retry: { attempts: 10, delay: '1s', maxDelay: '4s' },
      },
    ]);
    const ctx = daemonContext('operator-gateway', cfg);
    const start = ctx.log.lastSeq();
    const a = ctx.log.append({ kind: 'escalation.raised', target: 'worker:a', data: { reason: 'x' } });
    ctx.log.append({ kind: 'task.queued', target: 'task:t' });
    const b = ctx.log.append({ kind: 'run.completed', target: `run:${ctx.run.id}` });
    const n = notifier(ctx, start, (k) => (k === 'HOOK_SECRET' ? 'sekrit' : undefined), 1);
    const view = () => n.view(cfg.notify)[0]!;
    const idleAfter = (requests: number) =>
      waitFor(`attempt ${requests} settled`, () => receiver.requests.length >= requests && view().state === 'idle');
    // Attempts 1-3 fail; each next one is due 1s, 2s, 4s later on the swarm clock, not before.
    for (const [attempt, waitMs] of [
      [1, 1000],
      [2, 2000],
      [3, 4000],
    ] as const) {
      n.kick(cfg.notify);
      await idleAfter(attempt);
      expect(view()).toMatchObject({ failures: attempt, nextAt: ctx.clock.now() + waitMs });
      ctx.clock.t += waitMs - 1;
      n.kick(cfg.notify);
      expect(view().state).toBe('idle');
      expect(receiver.requests).toHaveLength(attempt);
      ctx.clock.t += 1;
    }
    // The 4th hangs: given up at the timeout, counted as a failure.
    n.kick(cfg.notify);
    await idleAfter(4);
    expect(view()).toMatchObject({ failures: 4, lastError: 'no answer within 300ms' });
    ctx.clock.t += 4000;
    // The 5th is accepted, and the next event follows without waiting for a tick.
    n.kick(cfg.notify);
    await waitFor('both accepted', () => receiver.accepted().length === 2 && view().state === 'idle');
    expect(receiver.accepted().map((r) => r.seq)).toEqual([a.seq, b.seq]);
    expect(receiver.requests.map((r) => r.seq)).toEqual([a.seq, a.seq, a.seq, a.seq, a.seq, b.seq]);
    expect(receiver.requests.every((r) => r.signatureOk)).toBe(true);
    expect(view()).toMatchObject({ seq: b.seq, failures: 0, delivered: 2, lastError: null });
    // Caught up: nothing more is sent.
    n.kick(cfg.notify);
    expect(receiver.requests).toHaveLength(6);
  });

  it('an endpoint that never answers: given up after its attempts, notify.failed recorded, and the next event is tried', async () => {
    const port = await freePort();
    const cfg = config([
      { name: 'dead', url: `http://127.0.0.1:${port}/`, on: ['escalation'], retry: { attempts: 2, delay: '1s' } },
    ]);
    const ctx = daemonContext('operator-gateway', cfg);
    const start = ctx.log.lastSeq();
    const first = ctx.log.append({ kind: 'escalation.raised', target: 'worker:a', data: { reason: 'x' } });
    const second = ctx.log.append({ kind: 'escalation.resolved', target: 'worker:a', data: {} });
    const n = notifier(ctx, start, () => undefined, 0);
    const view = () => n.view(cfg.notify)[0]!;
    n.kick(cfg.notify);
    await waitFor('first attempt failed', () => view().failures === 1 && view().state === 'idle');
    expect(view().lastError).toBe('ECONNREFUSED');
    ctx.clock.t += 500;
    n.kick(cfg.notify);
    await waitFor('given up', () => view().givenUp === 1 && view().state === 'idle');
    const failed = readEvents(ctx.db, { kindPrefix: 'notify.failed' });
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      target: 'notify:dead',
      severity: 'error',
      data: { endpoint: 'dead', eventSeq: first.seq, eventKind: 'escalation.raised', attempts: 2 },
    });
    expect(view()).toMatchObject({ seq: first.seq, failures: 0 });
    // The next event starts afresh, at once.
    n.kick(cfg.notify);
    await waitFor('next event tried', () => view().failures === 1 && view().state === 'idle');
    expect(view().seq).toBe(first.seq);
    expect(second.seq).toBeGreaterThan(first.seq);
  });
});
