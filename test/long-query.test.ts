import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TestSwarm } from './helpers/swarm';
import { startPostgres, type Sleeper, type TestPostgres } from './helpers/postgres';
import { skipReason } from './helpers/system-packages';
import { tmpDir, waitFor } from './helpers/tmp';

// hang-guard against a real PostgreSQL, through the pg driver: runaway
// queries (pg_sleep) past maxQuery are ended with pg_terminate_backend, only
// those in scope (application_name matching, no superuser's), never Swarm's own; with cleanStart,
// matching queries already running when the run starts are ended at once.
// The server asks for a password (scram-sha-256), which reaches hang-guard
// through passwordEnv alone; a psql planted first on PATH would fail loudly,
// so the probe is shown to need none.

const skip = skipReason(['postgresql']);
const PASSWORD = 'pg-secret-5d1e9a';
let pg: TestPostgres;
let swarm: TestSwarm;
const sleepers = new Map<string, Sleeper>();
const shadow = tmpDir('swarm-psql-');
const psqlCalled = path.join(shadow, 'psql-was-run');

/** A runaway query of the application's own role, or of a superuser (a DBA's VACUUM, a pg_dump). */
async function sleeper(app: string, user = 'app'): Promise<void> {
  sleepers.set(app, await pg.sleeper(app, 600, user));
}

beforeAll(async () => {
  if (skip) return;
  fs.writeFileSync(path.join(shadow, 'psql'), `#!/bin/sh\ntouch ${psqlCalled}\nexit 1\n`, { mode: 0o755 });
  pg = startPostgres(PASSWORD);
  await pg.admin(`CREATE ROLE app LOGIN PASSWORD '${PASSWORD}'`);
  await sleeper('runaway-early');
  await sleeper('runaway-dba', 'postgres');
  await sleeper('reporting-app');
  swarm = new TestSwarm(
    {
      name: 'pg',
      tick: '250ms',
      postgres: { host: pg.host, port: pg.port, user: 'postgres', database: 'postgres', passwordEnv: 'SWARM_TEST_PG_PASSWORD', maxQuery: '3s', applicationName: '^runaway', cleanStart: true, every: '500ms' },
      jobs: { idle: { command: ['true'] } },
    },
    { SWARM_TEST_PG_PASSWORD: PASSWORD, PATH: `${shadow}:${process.env.PATH ?? ''}` },
  );
  swarm.up();
}, 90_000);

afterAll(async () => {
  swarm?.teardown();
  for (const s of sleepers.values()) await s.close();
  pg?.stop();
});

describe('long database queries', () => {
  beforeEach((ctx) => ctx.skip(skip !== null, skip ?? undefined));

  it('clean start ends a matching query already running, whatever its age', async () => {
    const d = await swarm.waitEvent('detect.long_query', undefined, (e) => e.data.applicationName === 'runaway-early', 30_000);
    expect(d.data.cleanStart).toBe(true);
    await swarm.waitEvent('action.verified', d.target, (e) => e.data.type === 'terminate_query', 30_000);
    expect(await sleepers.get('runaway-early')?.ended).toBe('terminated');
  });

  it('a runaway query past maxQuery is terminated; one that does not match the pattern is left alone', async () => {
    await sleeper('runaway-late');
    const d = await swarm.waitEvent('detect.long_query', undefined, (e) => e.data.applicationName === 'runaway-late', 30_000);
    expect(d.data.cleanStart).toBe(false);
    expect(Number(d.data.runningMs)).toBeGreaterThan(3000);
    expect(d.data.query).toBeUndefined();
    const verified = await swarm.waitEvent('action.verified', d.target, (e) => e.data.type === 'terminate_query', 30_000);
    expect(verified.data).toMatchObject({ pid: d.data.pid, signalSent: true });
    expect(await sleepers.get('runaway-late')?.ended).toBe('terminated');
    // The other application's query has run far past maxQuery and is still running.
    await waitFor('other query older than maxQuery', () => swarm.events({ kind: 'detect.long_query' }).length >= 2);
    expect(swarm.events({ kind: 'detect.long_query' }).map((e) => e.data.applicationName)).not.toContain('reporting-app');
    const stillRunning = await Promise.race([sleepers.get('reporting-app')?.ended, new Promise((r) => setImmediate(() => r('running')))]);
    expect(stillRunning).toBe('running');
  });

  it('a superuser\'s query is never ended, though it matches the pattern; events hold a fingerprint, never the SQL', async () => {
    await waitFor('runaway-late ended', () => swarm.events({ kind: 'detect.long_query' }).some((e) => e.data.applicationName === 'runaway-late'));
    const detections = swarm.events({ kind: 'detect.long_query' });
    expect(detections.map((e) => e.data.applicationName)).not.toContain('runaway-dba');
    const stillRunning = await Promise.race([sleepers.get('runaway-dba')?.ended, new Promise((r) => setImmediate(() => r('running')))]);
    expect(stillRunning).toBe('running');
    for (const d of detections) {
      expect(d.data).toMatchObject({ usename: 'app', datname: 'postgres', queryFingerprint: expect.stringMatching(/^[0-9a-f]{16}$/) });
    }
    expect(JSON.stringify(swarm.events())).not.toMatch(/pg_sleep/i);
  });

  it('psql was never run, and the password is in no event or log', () => {
    expect(fs.existsSync(psqlCalled)).toBe(false);
    expect(JSON.stringify(swarm.events())).not.toContain(PASSWORD);
    expect(fs.readFileSync(path.join(swarm.stateDir, 'workflow_events.log'), 'utf8')).not.toContain(PASSWORD);
    expect(swarm.pm2('logs', '--nostream', '--lines', '1000')).not.toContain(PASSWORD);
  });
});
