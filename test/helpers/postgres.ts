import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Client } from 'pg';
import { tmpDir } from './tmp';

// A real PostgreSQL for a test: a fresh cluster in a temporary folder, on a
// unix socket only. The server refuses to run as root, so as root it runs as
// the `postgres` user; as anyone else, as that user.

function pgBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).sort() : [];
  const v = versions[versions.length - 1];
  if (!v) throw new Error('PostgreSQL server not installed: apt-get install postgresql (.ci/run does)');
  return path.join(base, v, 'bin');
}

const isRoot = process.getuid?.() === 0;

function asPostgres(cmd: string, args: string[]): void {
  const [bin, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const r = spawnSync(bin, argv, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} failed: ${r.stderr || r.stdout}`);
}

/** A client session running one long query; `ended` settles when the server ends the session or the query. */
export interface Sleeper {
  ended: Promise<'terminated' | 'finished'>;
  close(): Promise<void>;
}

export interface TestPostgres {
  host: string;
  port: number;
  stop(): void;
  /** Starts a query that runs `seconds`, under the given application_name, as `user` (postgres, a superuser, unless given). */
  sleeper(appName: string, seconds: number, user?: string): Promise<Sleeper>;
  /** Runs one statement as the superuser. */
  admin(sql: string): Promise<void>;
}

/** With a password, every connection must give it (scram-sha-256); without, the cluster trusts its socket. */
export function startPostgres(password?: string): TestPostgres {
  const bin = pgBin();
  const dir = tmpDir('swarm-pg-');
  fs.chmodSync(dir, 0o755);
  const own = (file: string) => isRoot && spawnSync('chown', ['postgres:postgres', file]);
  own(dir);
  const data = path.join(dir, 'data');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const auth = ['-A', 'trust'];
  if (password !== undefined) {
    const pwfile = path.join(dir, 'pwfile');
    fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    own(pwfile);
    auth.splice(0, 2, '-A', 'scram-sha-256', `--pwfile=${pwfile}`);
  }
  asPostgres(path.join(bin, 'initdb'), ['-D', data, ...auth, '-U', 'postgres']);
  asPostgres(path.join(bin, 'pg_ctl'), [
    '-D',
    data,
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=`,
    '-l',
    path.join(dir, 'server.log'),
    '-w',
    'start',
  ]);
  return {
    host: dir,
    port,
    stop: () => asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']),
    admin: async (sql) => {
      const client = new Client({ host: dir, port, user: 'postgres', password, database: 'postgres' });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    },
    sleeper: async (appName, seconds, user = 'postgres') => {
      const client = new Client({ host: dir, port, user, password, database: 'postgres', application_name: appName });
      // The server ending the session is what the tests wait for, not a failure.
      client.on('error', () => undefined);
      await client.connect();
      const ended = client.query('SELECT pg_sleep($1)', [seconds]).then(
        () => 'finished' as const,
        () => 'terminated' as const,
      );
      return { ended, close: () => client.end().catch(() => undefined) };
    },
  };
}
