import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../lib/config/config';
import { DaemonRuntime } from '../lib/daemon-runtime';
import { openDb } from '../lib/db';
import { readEvents } from '../lib/event-log';
import { IllegalTransitionError } from '../lib/errors';
import { Lifecycle } from '../lib/lifecycle';
import { silentLogger } from '../lib/logger';
import { readStateFile, JsonStateStore } from '../lib/state-store';
import { DaemonHeaderSchema } from '../lib/state-files';
import { Redactor } from '../lib/redact';
import { Action, LocalGrantor } from '../lib/actions/action';
import { SqliteLeaseStore } from '../lib/actions/leases';
import { SqliteEventLog } from '../lib/event-log';
import { ManualClock } from './helpers/manual-clock';
import { tmpDir } from './helpers/tmp';

describe('daemon runtime', () => {
  it('ticks on the injected clock, writes a heartbeat each tick, and stops cleanly', async () => {
    const dir = tmpDir();
    const config = compileConfig(
      { name: 't', stateDir: dir, tick: '1s', jobs: { j: { command: ['true'] } } },
      path.join(dir, 'c.json'),
      {},
    );
    const db = openDb(dir);
    const clock = new ManualClock();
    let ticks = 0;
    const rt = new DaemonRuntime(
      { name: 'worker-sentry', config, db, state: new JsonStateStore(dir), clock, logger: silentLogger, hmacKey: null },
      { tick: () => void (ticks += 1), snapshot: () => ({ custom: ticks }) },
    );
    await rt.start();
    await clock.advance(0);
    expect(ticks).toBe(1);
    await clock.advance(3000);
    expect(ticks).toBe(4);
    const state = readStateFile(path.join(dir, 'worker_sentry_state.json'), DaemonHeaderSchema);
    expect(state.ok && state.value).toMatchObject({
      lifecycle: 'running',
      ticks: 4,
      lastTickAt: new Date(clock.t).toISOString(),
      custom: 4,
    });
    await rt.stop('test');
    await clock.advance(5000);
    expect(ticks).toBe(4);
    expect(rt.state).toBe('stopped');
    expect(readEvents(db).map((e) => e.kind)).toEqual(['run.started', 'daemon.started', 'daemon.stopped']);
    db.close();
  });

  it('refuses illegal lifecycle transitions', () => {
    const seen: string[] = [];
    const lc = new Lifecycle<'a' | 'b' | 'c'>('m', 'a', { a: ['b'], b: ['c'], c: [] }, (f, t) =>
      seen.push(`${f}->${t}`),
    );
    lc.to('b', 'ok');
    expect(() => lc.to('a', 'no')).toThrow(IllegalTransitionError);
    expect(seen).toEqual(['a->b']);
  });
});

describe('state files', () => {
  it('reports missing and corrupt files and carries on', () => {
    const dir = tmpDir();
    const store = new JsonStateStore(dir);
    const missing = store.read('nope.json', DaemonHeaderSchema);
    expect(missing.ok === false && missing.error.reason).toBe('missing');
    fs.writeFileSync(path.join(dir, 'bad.json'), '{"daemon": 1');
    const bad = store.read('bad.json', DaemonHeaderSchema);
    expect(bad.ok === false && bad.error.reason).toBe('corrupt');
    fs.writeFileSync(path.join(dir, 'shape.json'), '{"daemon": "x"}');
    const shape = store.read('shape.json', DaemonHeaderSchema);
    expect(shape.ok === false && shape.error.message).toMatch(/pid/);
    store.write('good.json', { a: 1 });
    expect(fs.statSync(path.join(dir, 'good.json')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('leases and grants', () => {
  it('one actor per target; pause holds back all but safety', async () => {
    const dir = tmpDir();
    const db = openDb(dir);
    let t = 0;
    let paused = false;
    const leases = new SqliteLeaseStore(db, () => t);
    const grantor = new LocalGrantor(leases, () => paused, 1000);
    const deps = (actor: 'worker-sentry' | 'hang-guard') => ({
      log: new SqliteEventLog(db, { source: actor, runId: () => 'r' }),
      grantor,
      actor,
      now: () => t,
      logger: silentLogger,
    });
    const p = {
      type: 'restart_worker' as const,
      target: 'worker:w' as const,
      priority: 'recovery' as const,
      reason: 'x',
      incidentId: null,
    };
    const a = await Action.propose(deps('worker-sentry'), p);
    const b = await Action.propose(deps('hang-guard'), { ...p, type: 'stop_worker' });
    expect([a.granted, b.granted]).toEqual([true, false]);
    a.started();
    a.verified({});
    expect((await Action.propose(deps('hang-guard'), p)).granted).toBe(true);
    t = 5000; // the lease expired: a dead holder frees its target
    expect((await Action.propose(deps('worker-sentry'), p)).granted).toBe(true);
    paused = true;
    expect((await Action.propose(deps('worker-sentry'), { ...p, target: 'worker:z' })).granted).toBe(false);
    expect(
      (await Action.propose(deps('worker-sentry'), { ...p, target: 'worker:y', priority: 'safety' })).granted,
    ).toBe(true);
    const kinds = readEvents(db, { target: 'worker:w' }).map((e) => e.kind);
    expect(kinds.slice(0, 6)).toEqual([
      'action.proposed',
      'action.granted',
      'action.proposed',
      'action.denied',
      'action.started',
      'action.verified',
    ]);
    db.close();
  });
});

describe('secrets', () => {
  it('values of KEY/TOKEN/SECRET/PASSWORD variables are redacted', () => {
    const r = Redactor.fromEnvs({ API_KEY: 'abcd1234', DB_PASSWORD: 'hunter22', PATH: '/bin' });
    expect(r.text('auth abcd1234 failed for hunter22')).toBe('auth [redacted] failed for [redacted]');
  });

  it('short values are not secrets: false and 4096 stay as they are, and the structure is untouched', () => {
    const r = Redactor.fromEnvs({ TOKENIZERS_PARALLELISM: 'false', MAX_TOKENS: '4096', API_KEY: 'k3y-value-long' });
    const evidence = {
      ok: false,
      exitCode: 4096,
      signal: null,
      line: 'max_tokens=4096 parallel=false key=k3y-value-long',
      nested: [{ flag: true }],
    };
    const out = r.value(evidence);
    expect(out).toEqual({ ...evidence, line: 'max_tokens=4096 parallel=false key=[redacted]' });
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
  });

  it('a secret holding quotes or backslashes is cut out whole, and the JSON stays valid', () => {
    const secret = 'pa"ss\\wo"rd';
    const r = Redactor.fromEnvs({ DB_PASSWORD: secret });
    const out = r.value({ tail: `login with ${secret} failed`, argv: ['--pw', secret] });
    const text = JSON.stringify(out);
    expect(text).not.toContain('ss\\\\wo');
    expect(JSON.parse(text)).toEqual({ tail: 'login with [redacted] failed', argv: ['--pw', '[redacted]'] });
  });

  it('argument lists lose the values of arguments named like credentials, set here or not', () => {
    const r = Redactor.fromEnvs({});
    expect(
      r.argv(['train.py', '--api-key', 'sk-live-123', '--db-password=hunter2hunter', '--epochs', '5', 'token=abc']),
    ).toEqual(['train.py', '--api-key', '[redacted]', '--db-password=[redacted]', '--epochs', '5', 'token=[redacted]']);
  });

  it('the event log stores every event redacted, its hash chain over the redacted data', () => {
    const dir = tmpDir();
    const db = openDb(dir);
    const log = new SqliteEventLog(db, {
      source: 'worker-sentry',
      runId: () => 'r-1',
      redactor: Redactor.fromEnvs({ HF_TOKEN: 'hf_abcdef123' }),
    });
    log.append({
      kind: 'task.queued',
      target: 'task:t',
      data: { args: ['--hf-token', 'hf_abcdef123'], message: 'printed hf_abcdef123' },
    });
    const stored = readEvents(db)[0];
    expect(JSON.stringify(stored)).not.toContain('hf_abcdef123');
    expect(stored?.data).toEqual({ args: ['--hf-token', '[redacted]'], message: 'printed [redacted]' });
    db.close();
  });
});
