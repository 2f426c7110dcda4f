import { describe, expect, it } from 'vitest';
import { clientConfig, PgProbe, PgProbeError, type PgConfig } from '../lib/pg-probe';

// The PostgreSQL probe's connection settings, without a server: what comes
// from the config, what is left to the PG* variables, and where the password
// may come from. The probe against a real server is in long-query.test.ts.

const base: PgConfig = {
  host: null, port: null, user: null, database: null, passwordEnv: null,
  maxQueryMs: 1000, applicationName: null, cleanStart: false, everyMs: 1000,
};

describe('the PostgreSQL probe connection', () => {
  it('leaves unset fields to the PG* variables, and names its own session', () => {
    const c = clientConfig(base, {});
    expect(c).toMatchObject({ host: undefined, port: undefined, user: undefined, database: undefined, password: undefined, application_name: 'swarm-hang-guard' });
    expect(c.statement_timeout).toBeGreaterThan(0);
    expect(clientConfig({ ...base, host: '/run/pg', port: 6543, user: 'ops', database: 'jobs' }, {})).toMatchObject({ host: '/run/pg', port: 6543, user: 'ops', database: 'jobs' });
  });

  it('takes the password only from the variable passwordEnv names, and says when it is not set', () => {
    expect(clientConfig({ ...base, passwordEnv: 'DB_PASS' }, { DB_PASS: 's3cret-value' }).password).toBe('s3cret-value');
    expect(() => clientConfig({ ...base, passwordEnv: 'DB_PASS' }, {})).toThrow(PgProbeError);
    expect(() => clientConfig({ ...base, passwordEnv: 'DB_PASS' }, {})).toThrow(/postgres\.passwordEnv names DB_PASS, which is not set/);
  });

  it('a server that is not there is a PgProbeError naming the cause, never the password', async () => {
    const probe = new PgProbe({ ...base, host: '127.0.0.1', port: 1, user: 'x', database: 'x', passwordEnv: 'DB_PASS' }, undefined, { DB_PASS: 'pw-9f2c7e1a' });
    const err = await probe.activeQueries().then(() => null, (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(PgProbeError);
    expect(err?.message).toMatch(/cannot connect to PostgreSQL: .*ECONNREFUSED/);
    expect(err?.message).not.toContain('pw-9f2c7e1a');
    await probe.close();
  });
});
