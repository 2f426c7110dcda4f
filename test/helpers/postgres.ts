import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { tmpDir } from './tmp';

// A real PostgreSQL for a test: a fresh cluster in a temporary folder, run as
// the `postgres` user (the server refuses root), on a unix socket only.

function pgBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).sort() : [];
  const v = versions[versions.length - 1];
  if (!v) throw new Error('PostgreSQL server not installed: apt-get install postgresql (.ci/run does)');
  return path.join(base, v, 'bin');
}

function asPostgres(cmd: string, args: string[]): void {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} failed: ${r.stderr || r.stdout}`);
}

export interface TestPostgres {
  host: string;
  port: number;
  stop(): void;
  /** Starts a query that runs `seconds`, under the given application_name. */
  sleeper(appName: string, seconds: number): ChildProcess;
}

export function startPostgres(): TestPostgres {
  const bin = pgBin();
  const dir = tmpDir('swarm-pg-');
  fs.chmodSync(dir, 0o755);
  spawnSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  const port = 20000 + Math.floor(Math.random() * 20000);
  asPostgres(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres']);
  asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-o', `-p ${port} -k ${dir} -c listen_addresses=`, '-l', path.join(dir, 'server.log'), '-w', 'start']);
  return {
    host: dir,
    port,
    stop: () => asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']),
    sleeper: (appName, seconds) =>
      spawn('psql', ['-X', '-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', `SELECT pg_sleep(${seconds})`], {
        env: { ...process.env, PGAPPNAME: appName }, stdio: 'ignore',
      }),
  };
}
