import { spawn } from 'node:child_process';
import type { CompiledConfig } from './config';

// Long database queries, read from pg_stat_activity through psql (argv, no
// shell, under a timeout). Swarm's own session is named, and both it and the
// backend running the probe are excluded, so the probe never ends itself.

export const OWN_APP_NAME = 'swarm-hang-guard';

export interface ActiveQuery {
  pid: number;
  applicationName: string;
  runningMs: number;
  query: string;
}

export type PgConfig = NonNullable<CompiledConfig['postgres']>;

const SEP = '\u001f';

function psql(cfg: PgConfig, sql: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['-X', '-q', '-A', '-t', '-F', SEP, '-v', 'ON_ERROR_STOP=1', '-h', cfg.host, '-p', String(cfg.port), '-U', cfg.user, '-d', cfg.database, '-c', sql];
    const child = spawn('psql', args, { env: { ...process.env, PGAPPNAME: OWN_APP_NAME, PGCONNECT_TIMEOUT: '5' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`psql could not run: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`psql failed (${code ?? signal}): ${err.trim().slice(0, 300)}`));
    });
  });
}

export async function activeQueries(cfg: PgConfig): Promise<ActiveQuery[]> {
  const out = await psql(
    cfg,
    `SELECT pid, coalesce(application_name, ''), floor(extract(epoch from (clock_timestamp() - query_start)) * 1000)::bigint, left(regexp_replace(query, '\\s+', ' ', 'g'), 200)
       FROM pg_stat_activity
      WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND coalesce(application_name, '') <> '${OWN_APP_NAME}'`,
  );
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [pid, app, ms, query] = l.split(SEP);
      return { pid: Number(pid), applicationName: app ?? '', runningMs: Number(ms), query: query ?? '' };
    })
    .filter((q) => Number.isInteger(q.pid) && q.pid > 0);
}

export async function terminate(cfg: PgConfig, pid: number): Promise<boolean> {
  const out = await psql(cfg, `SELECT pg_terminate_backend(${Math.trunc(pid)})`);
  return out.trim() === 't';
}

/** Which of the active queries are ours to end: matching the application pattern, and (unless clean start) too old. */
export function overrunning(qs: ActiveQuery[], cfg: PgConfig, cleanStart: boolean): ActiveQuery[] {
  return qs.filter((q) => (cfg.applicationName === null || cfg.applicationName.test(q.applicationName)) && (cleanStart || q.runningMs > cfg.maxQueryMs));
}
