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
// matching leftovers (older than its olderThan) are ended when the run starts, or when each task
// starts, while a fresh query is left alone. hang-guard's state file and the session heartbeat
// carry the count of long queries.
// The server asks for a password (scram-sha-256), which reaches hang-guard
// through passwordEnv alone; a psql planted first on PATH would fail loudly,
// so the probe is shown to need none.

const skip = skipReason(['postgresql']);
const PASSWORD = 'pg-secret-5d1e9a';
let pg: TestPostgres;
let swarm: TestSwarm;
let swarm2: TestSwarm | undefined;
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
  const early = Date.now();
  await sleeper('runaway-dba', 'postgres');
  await sleeper('reporting-app');
  swarm = new TestSwarm(
    {
      name: 'pg',
      tick: '250ms',
      postgres: {
        host: pg.host,
        port: pg.port,
        user: 'postgres',
        database: 'postgres',
        passwordEnv: 'SWARM_TEST_PG_PASSWORD',
        maxQuery: '3s',
        applicationName: '^runaway',
        cleanStart: { olderThan: '1s' },
        every: '500ms',
      },
      jobs: { idle: { command: ['true'] } },
    },
    { SWARM_TEST_PG_PASSWORD: PASSWORD, PATH: `${shadow}:${process.env.PATH ?? ''}` },
  );
  // A leftover by the time the run starts: older than cleanStart.olderThan.
  await waitFor('runaway-early older than cleanStart.olderThan', () => Date.now() - early >= 1500);
  swarm.up();
}, 90_000);

afterAll(async () => {
  swarm?.teardown();
  swarm2?.teardown();
  for (const s of sleepers.values()) await s.close();
  pg?.stop();
});

/** The sleeper `app` was ended by a clean start of `mode`, at least `olderThanMs` old, and verified gone. */
async function endedByCleanStart(s: TestSwarm, app: string, mode: string, olderThanMs: number): Promise<void> {
  const d = await s.waitEvent('detect.long_query', undefined, (e) => e.data.applicationName === app, 30_000);
  expect(d.data.cleanStart).toBe(mode);
  expect(Number(d.data.runningMs)).toBeGreaterThanOrEqual(olderThanMs);
  await s.waitEvent('action.verified', d.target, (e) => e.data.type === 'terminate_query', 30_000);
  expect(await sleepers.get(app)?.ended).toBe('terminated');
}

describe('long database queries', () => {
  beforeEach((ctx) => ctx.skip(skip !== null, skip ?? undefined));

  it('clean start ends a matching leftover (older than cleanStart.olderThan) already running when the run starts', async () => {
    await endedByCleanStart(swarm, 'runaway-early', 'run-start', 1000);
  });

  it('a runaway query past maxQuery is terminated; one that does not match the pattern is left alone', async () => {
    await sleeper('runaway-late');
    const d = await swarm.waitEvent(
      'detect.long_query',
      undefined,
      (e) => e.data.applicationName === 'runaway-late',
      30_000,
    );
    expect(d.data.cleanStart).toBe(false);
    expect(Number(d.data.runningMs)).toBeGreaterThan(3000);
    expect(d.data.query).toBeUndefined();
    const verified = await swarm.waitEvent(
      'action.verified',
      d.target,
      (e) => e.data.type === 'terminate_query',
      30_000,
    );
    expect(verified.data).toMatchObject({ pid: d.data.pid, signalSent: true });
    expect(await sleepers.get('runaway-late')?.ended).toBe('terminated');
    // The other application's query has run far past maxQuery and is still running.
    await waitFor('other query older than maxQuery', () => swarm.events({ kind: 'detect.long_query' }).length >= 2);
    expect(swarm.events({ kind: 'detect.long_query' }).map((e) => e.data.applicationName)).not.toContain(
      'reporting-app',
    );
    const stillRunning = await Promise.race([
      sleepers.get('reporting-app')?.ended,
      new Promise((r) => setImmediate(() => r('running'))),
    ]);
    expect(stillRunning).toBe('running');
  });

  it("a superuser's query is never ended, though it matches the pattern; events hold a fingerprint, never the SQL", async () => {
    await waitFor('runaway-late ended', () =>
      swarm.events({ kind: 'detect.long_query' }).some((e) => e.data.applicationName === 'runaway-late'),
    );
    const detections = swarm.events({ kind: 'detect.long_query' });
    expect(detections.map((e) => e.data.applicationName)).not.toContain('runaway-dba');
    const stillRunning = await Promise.race([
      sleepers.get('runaway-dba')?.ended,
      new Promise((r) => setImmediate(() => r('running'))),
    ]);
    expect(stillRunning).toBe('running');
    for (const d of detections) {
      expect(d.data).toMatchObject({
        usename: 'app',
        datname: 'postgres',
        queryFingerprint: expect.stringMatching(/^[0-9a-f]{16}$/),
      });
    }
    expect(JSON.stringify(swarm.events())).not.toMatch(/pg_sleep/i);
  });

  it("the count of long queries, ours to end or not, is in hang-guard's state file and the session heartbeat", async () => {
    // reporting-app (out of scope) and runaway-dba (a superuser's) run on, past maxQuery.
    await waitFor(
      'hang-guard counts 2 long queries',
      () => {
        const s = JSON.parse(fs.readFileSync(path.join(swarm.stateDir, 'hang_guard_state.json'), 'utf8')) as {
          postgres?: { longQueries?: number; checkedAt?: string };
        };
        return s.postgres?.longQueries === 2 && typeof s.postgres.checkedAt === 'string';
      },
      30_000,
    );
    const runId = String(swarm.query().run?.id);
    await waitFor(
      'a heartbeat line with the count',
      () => {
        const lines = fs
          .readFileSync(path.join(swarm.stateDir, `session_state_${runId}.jsonl`), 'utf8')
          .trim()
          .split('\n');
        return (JSON.parse(lines.at(-1) ?? '{}') as { longQueries?: number }).longQueries === 2;
      },
      30_000,
    );
  });

  it('psql was never run, and the password is in no event or log', () => {
    expect(fs.existsSync(psqlCalled)).toBe(false);
    expect(JSON.stringify(swarm.events())).not.toContain(PASSWORD);
    expect(fs.readFileSync(path.join(swarm.stateDir, 'workflow_events.log'), 'utf8')).not.toContain(PASSWORD);
    expect(swarm.pm2('logs', '--nostream', '--lines', '1000')).not.toContain(PASSWORD);
  });
});

describe('clean start on task-start', () => {
  beforeEach((ctx) => ctx.skip(skip !== null, skip ?? undefined));

  it('a leftover is ended when a task starts, not before; a fresh query is left alone', async () => {
    await sleeper('leftover-old');
    const old = Date.now();
    swarm2 = new TestSwarm(
      {
        name: 'pg-tasks',
        tick: '250ms',
        lanes: { cpu: { kind: 'cpu', slots: 1, fill: 'slots' } },
        postgres: {
          host: pg.host,
          port: pg.port,
          user: 'postgres',
          database: 'postgres',
          passwordEnv: 'SWARM_TEST_PG_PASSWORD',
          maxQuery: '1h',
          applicationName: '^leftover',
          cleanStart: { olderThan: '8s', on: 'task-start' },
          every: '500ms',
        },
        jobs: { step: { command: [process.execPath, '-e', 'setTimeout(() => {}, 200)'] } },
      },
      { SWARM_TEST_PG_PASSWORD: PASSWORD },
    );
    const s2 = swarm2;
    s2.up();
    // Read while no task has started: the leftover, already in scope, is not touched yet.
    await waitFor(
      'a first reading by hang-guard',
      () => {
        const s = JSON.parse(fs.readFileSync(path.join(s2.stateDir, 'hang_guard_state.json'), 'utf8')) as {
          postgres?: { checkedAt?: string | null };
        };
        return typeof s.postgres?.checkedAt === 'string';
      },
      30_000,
    );
    await waitFor('leftover-old older than cleanStart.olderThan', () => Date.now() - old >= 8500, 30_000);
    expect(s2.events({ kind: 'detect.long_query' })).toHaveLength(0);
    await sleeper('leftover-fresh');
    expect(s2.ctl('submit', 'step', '--id', 's1').status).toBe(0);
    await endedByCleanStart(s2, 'leftover-old', 'task-start', 8000);
    // The fresh query was read in the same pass and spared.
    expect(s2.events({ kind: 'detect.long_query' }).map((e) => e.data.applicationName)).not.toContain('leftover-fresh');
    const fresh = await Promise.race([
      sleepers.get('leftover-fresh')?.ended,
      new Promise((r) => setImmediate(() => r('running'))),
    ]);
    expect(fresh).toBe('running');
  }, 120_000);
});
