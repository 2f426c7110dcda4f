import { describe, expect, it } from 'vitest';
import { compileConfig } from '../lib/config/config';
import type { ConfigError } from '../lib/errors';
import {
  clientConfig,
  overrunning,
  PgProbe,
  PgProbeError,
  queryFingerprint,
  type ActiveQuery,
  type PgConfig,
} from '../lib/pg-probe';

// The PostgreSQL probe's connection settings, without a server: what comes
// from the config, what is left to the PG* variables, and where the password
// may come from. The probe against a real server is in long-query.test.ts.

const base: PgConfig = {
  host: null,
  port: null,
  user: null,
  database: null,
  passwordEnv: null,
  maxQueryMs: 1000,
  applicationName: null,
  usename: null,
  datname: null,
  includeSuperusers: false,
  cleanStart: null,
  everyMs: 1000,
};

describe('the PostgreSQL probe connection', () => {
  it('leaves unset fields to the PG* variables, and names its own session', () => {
    const c = clientConfig(base, {});
    expect(c).toMatchObject({
      host: undefined,
      port: undefined,
      user: undefined,
      database: undefined,
      password: undefined,
      application_name: 'swarm-hang-guard',
    });
    expect(c.statement_timeout).toBeGreaterThan(0);
    expect(clientConfig({ ...base, host: '/run/pg', port: 6543, user: 'ops', database: 'jobs' }, {})).toMatchObject({
      host: '/run/pg',
      port: 6543,
      user: 'ops',
      database: 'jobs',
    });
  });

  it('takes the password only from the variable passwordEnv names, and says when it is not set', () => {
    expect(clientConfig({ ...base, passwordEnv: 'DB_PASS' }, { DB_PASS: 's3cret-value' }).password).toBe(
      's3cret-value',
    );
    expect(() => clientConfig({ ...base, passwordEnv: 'DB_PASS' }, {})).toThrow(PgProbeError);
    expect(() => clientConfig({ ...base, passwordEnv: 'DB_PASS' }, {})).toThrow(
      /postgres\.passwordEnv names DB_PASS, which is not set/,
    );
  });

  it('a server that is not there is a PgProbeError naming the cause, never the password', async () => {
    const probe = new PgProbe(
      { ...base, host: '127.0.0.1', port: 1, user: 'x', database: 'x', passwordEnv: 'DB_PASS' },
      undefined,
      { DB_PASS: 'pw-9f2c7e1a' },
    );
    const err = await probe.activeQueries().then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(PgProbeError);
    expect(err?.message).toMatch(/cannot connect to PostgreSQL: .*ECONNREFUSED/);
    expect(err?.message).not.toContain('pw-9f2c7e1a');
    await probe.close();
  });
});

describe('what the PostgreSQL guard may end', () => {
  const q = (over: Partial<ActiveQuery>): ActiveQuery => ({
    pid: 100,
    applicationName: 'etl',
    usename: 'app',
    datname: 'jobs',
    superuser: false,
    runningMs: 5000,
    fingerprint: 'f',
    ...over,
  });

  it('a config without a scope is refused, naming the field', () => {
    let err: ConfigError | null = null;
    try {
      compileConfig(
        { name: 'x', postgres: { maxQuery: '1m', cleanStart: true }, jobs: { j: { command: ['x'] } } },
        'c.json',
        {},
      );
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err?.issues).toEqual([
      { path: 'postgres', message: 'expected a scope: applicationName, usename or datname' },
    ]);
  });

  it('only queries in scope, every scope field set matching, never a superuser unless allowed', () => {
    const qs = [
      q({ pid: 1 }),
      q({ pid: 2, usename: 'other' }),
      q({ pid: 3, datname: 'other' }),
      q({ pid: 4, superuser: true, usename: 'postgres' }),
      q({ pid: 5, runningMs: 10 }),
    ];
    const pids = (cfg: Partial<PgConfig>, clean = false) =>
      overrunning(qs, { ...base, ...cfg }, clean).map((x) => x.pid);
    expect(pids({})).toEqual([]);
    expect(pids({ usename: 'app' })).toEqual([1, 3]);
    expect(pids({ usename: 'app', datname: 'jobs' })).toEqual([1]);
    expect(pids({ applicationName: /^etl$/ })).toEqual([1, 2, 3]);
    expect(pids({ applicationName: /^etl$/, includeSuperusers: true })).toEqual([1, 2, 3, 4]);
    // A clean start ends leftovers at least olderThan old, and what is past maxQuery as ever; never a fresh query.
    const clean = { datname: 'jobs', cleanStart: { olderThanMs: 2000, on: 'run-start' as const } };
    expect(pids(clean, true)).toEqual([1, 2]);
    expect(pids(clean, false)).toEqual([1, 2]);
    expect(pids({ ...clean, maxQueryMs: 60_000 }, true)).toEqual([1, 2]);
    expect(pids({ ...clean, maxQueryMs: 60_000 }, false)).toEqual([]);
    expect(pids({ ...clean, cleanStart: { olderThanMs: 0, on: 'task-start' } }, true)).toEqual([1, 2, 5]);
  });

  it('cleanStart: true is olderThan 2m on run-start; the object form takes either, and names a bad field', () => {
    const pgOf = (cleanStart: unknown) =>
      compileConfig(
        { name: 'x', postgres: { maxQuery: '1m', usename: 'app', cleanStart }, jobs: { j: { command: ['x'] } } },
        'c.json',
        {},
      ).postgres?.cleanStart;
    expect(pgOf(true)).toEqual({ olderThanMs: 120_000, on: 'run-start' });
    expect(pgOf(false)).toBeNull();
    expect(pgOf({ on: 'task-start' })).toEqual({ olderThanMs: 120_000, on: 'task-start' });
    expect(pgOf({ olderThan: '30s' })).toEqual({ olderThanMs: 30_000, on: 'run-start' });
    expect(() => pgOf({ on: 'task-end' })).toThrow(/postgres\.cleanStart/);
  });

  it('stores a fingerprint of the SQL, the same for other literals, never the text', () => {
    const a = queryFingerprint("SELECT * FROM users WHERE token = 'tok-abc123' AND id = 42");
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(queryFingerprint("select *  from users\n WHERE token = 'other''s' AND id = 7")).toBe(a);
    expect(queryFingerprint('VACUUM users')).not.toBe(a);
  });
});
