import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { TestSwarm } from './helpers/swarm';
import { startPostgres, type TestPostgres } from './helpers/postgres';
import { waitFor } from './helpers/tmp';

// hang-guard against a real PostgreSQL: runaway queries (pg_sleep) past
// maxQuery are ended with pg_terminate_backend, only those whose
// application_name matches, never Swarm's own; with cleanStart, matching
// queries already running when the run starts are ended at once.

let pg: TestPostgres;
let swarm: TestSwarm;
const exits = new Map<string, Promise<number | null>>();
const sleepers: ChildProcess[] = [];

function sleeper(app: string): void {
  const p = pg.sleeper(app, 600);
  sleepers.push(p);
  exits.set(app, new Promise((resolve) => p.on('exit', (code) => resolve(code))));
}

beforeAll(async () => {
  pg = startPostgres();
  sleeper('runaway-early');
  sleeper('reporting-app');
  swarm = new TestSwarm({
    name: 'pg',
    tick: '250ms',
    postgres: { host: pg.host, port: pg.port, user: 'postgres', database: 'postgres', maxQuery: '3s', applicationName: '^runaway', cleanStart: true, every: '500ms' },
    jobs: { idle: { command: ['true'] } },
  });
  swarm.up();
}, 90_000);

afterAll(() => {
  swarm?.teardown();
  for (const p of sleepers) p.kill('SIGKILL');
  pg?.stop();
});

describe('long database queries', () => {
  it('clean start ends a matching query already running, whatever its age', async () => {
    const d = await swarm.waitEvent('detect.long_query', undefined, (e) => e.data.applicationName === 'runaway-early', 30_000);
    expect(d.data.cleanStart).toBe(true);
    await swarm.waitEvent('action.verified', d.target, (e) => e.data.type === 'terminate_query', 30_000);
    expect(await exits.get('runaway-early')).not.toBe(0);
  });

  it('a runaway query past maxQuery is terminated; one that does not match the pattern is left alone', async () => {
    sleeper('runaway-late');
    const d = await swarm.waitEvent('detect.long_query', undefined, (e) => e.data.applicationName === 'runaway-late', 30_000);
    expect(d.data.cleanStart).toBe(false);
    expect(Number(d.data.runningMs)).toBeGreaterThan(3000);
    expect(String(d.data.query)).toMatch(/pg_sleep/);
    await swarm.waitEvent('action.verified', d.target, (e) => e.data.type === 'terminate_query', 30_000);
    expect(await exits.get('runaway-late')).not.toBe(0);
    // The other application's query has run far past maxQuery and is still running.
    await waitFor('other query older than maxQuery', () => swarm.events({ kind: 'detect.long_query' }).length >= 2);
    expect(swarm.events({ kind: 'detect.long_query' }).map((e) => e.data.applicationName)).not.toContain('reporting-app');
    expect(sleepers[1]?.exitCode).toBeNull();
  });
});
