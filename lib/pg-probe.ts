import { createHash } from 'node:crypto';
import type { Client, ClientConfig } from 'pg';
import type { Clock } from './clock';
import type { CompiledConfig } from './config/config';
import { errorMessage } from './errors';
import { silentLogger, type Logger } from './logger';

// Long database queries, read from pg_stat_activity with the pg driver: no
// psql to install, and no connection string or password in any argv. The
// connection comes from the config, and what the config leaves out from the
// standard PG* variables, as libpq does. The password comes from the
// variable `passwordEnv` names, else PGPASSWORD (else ~/.pgpass, which the
// driver reads as libpq does), and is never logged or recorded. Swarm's own
// session is named, and both it and the backend running the probe are
// excluded, so the probe never ends itself.

export const OWN_APP_NAME = 'swarm-hang-guard';

/** Every query of the probe's own is ended by the server past this, so a locked catalog cannot hang hang-guard. */
export const PROBE_STATEMENT_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 5_000;
const VERIFY_EVERY_MS = 50;

export interface ActiveQuery {
  pid: number;
  applicationName: string;
  usename: string;
  datname: string;
  superuser: boolean;
  runningMs: number;
  /** What the query is, without its text: SQL can carry data and secrets, and events are kept for ever. */
  fingerprint: string;
}

/**
 * The first 16 hex digits of the SHA-256 of the query with its literals
 * taken out and its spacing and case evened, so the same statement with
 * other values has the same fingerprint, and the text is never stored.
 */
export function queryFingerprint(sql: string): string {
  const shape = sql
    .replace(/'(?:[^']|'')*'/g, '?')
    .replace(/\b\d+(?:\.\d+)?\b/g, '?')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
  return createHash('sha256').update(shape).digest('hex').slice(0, 16);
}

export type PgConfig = NonNullable<CompiledConfig['postgres']>;

/** The probe could not connect or query; the message never holds the password. */
export class PgProbeError extends Error {
  override name = 'PgProbeError';
}

export function clientConfig(cfg: PgConfig, env: NodeJS.ProcessEnv): ClientConfig {
  let password: string | undefined;
  if (cfg.passwordEnv !== null) {
    password = env[cfg.passwordEnv];
    if (password === undefined)
      throw new PgProbeError(`postgres.passwordEnv names ${cfg.passwordEnv}, which is not set`);
  }
  return {
    // undefined leaves the field to PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD.
    host: cfg.host ?? undefined,
    port: cfg.port ?? undefined,
    user: cfg.user ?? undefined,
    database: cfg.database ?? undefined,
    password,
    application_name: OWN_APP_NAME,
    statement_timeout: PROBE_STATEMENT_TIMEOUT_MS,
    query_timeout: PROBE_STATEMENT_TIMEOUT_MS * 2,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  };
}

const ACTIVE_SQL = `
  SELECT a.pid, coalesce(a.application_name, '') AS app, coalesce(a.usename::text, '') AS usename,
         coalesce(a.datname::text, '') AS datname, coalesce(r.rolsuper, false) AS superuser,
         floor(extract(epoch from (clock_timestamp() - a.query_start)) * 1000)::bigint AS ms, a.query
    FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
   WHERE a.state = 'active' AND a.backend_type = 'client backend'
     AND a.pid <> pg_backend_pid() AND coalesce(a.application_name, '') <> $1`;

/** One connection, opened on first use and opened again after any error. */
export class PgProbe {
  private client: Client | null = null;

  constructor(
    private readonly cfg: PgConfig,
    private readonly logger: Logger = silentLogger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  private async connected(): Promise<Client> {
    if (this.client) return this.client;
    // The driver is loaded on the first probe, not with the module: hang-guard imports this
    // module always, and most swarms have no PostgreSQL (pg costs every hang-guard ~5 MiB).
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on use, as said above
    const { Client: PgClient } = require('pg') as typeof import('pg');
    const client = new PgClient(clientConfig(this.cfg, this.env));
    // A server restart ends an idle connection with an 'error' event; without a
    // listener that would end hang-guard. The next call connects again.
    client.on('error', (err) => {
      this.logger.warn({ err: errorMessage(err) }, 'postgres connection lost');
      if (this.client === client) this.client = null;
    });
    try {
      await client.connect();
    } catch (err) {
      await this.end(client);
      throw new PgProbeError(`cannot connect to PostgreSQL: ${errorMessage(err)}`);
    }
    this.client = client;
    return client;
  }

  private async query<R extends Record<string, unknown>>(sql: string, params: unknown[]): Promise<R[]> {
    const client = await this.connected();
    try {
      return (await client.query<R>(sql, params)).rows;
    } catch (err) {
      await this.close();
      throw new PgProbeError(`PostgreSQL probe query failed: ${errorMessage(err)}`);
    }
  }

  async activeQueries(): Promise<ActiveQuery[]> {
    const rows = await this.query<{
      pid: number;
      app: string;
      usename: string;
      datname: string;
      superuser: boolean;
      ms: string;
      query: string | null;
    }>(ACTIVE_SQL, [OWN_APP_NAME]);
    return rows
      .map((r) => ({
        pid: Number(r.pid),
        applicationName: r.app,
        usename: r.usename,
        datname: r.datname,
        superuser: r.superuser === true,
        runningMs: Number(r.ms),
        fingerprint: queryFingerprint(r.query ?? ''),
      }))
      .filter((q) => Number.isInteger(q.pid) && q.pid > 0);
  }

  /** pg_terminate_backend's own answer: whether the signal was sent. */
  async terminate(pid: number): Promise<boolean> {
    const rows = await this.query<{ sent: boolean }>('SELECT pg_terminate_backend($1) AS sent', [Math.trunc(pid)]);
    return rows[0]?.sent === true;
  }

  async backendExists(pid: number): Promise<boolean> {
    const rows = await this.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [Math.trunc(pid)]);
    return rows.length > 0;
  }

  /**
   * Terminates a backend and verifies it gone: the signal is only a request,
   * and a backend inside an uninterruptible wait lingers, so the answer is
   * what pg_stat_activity shows afterwards, within `withinMs`.
   */
  async terminateVerified(
    pid: number,
    withinMs: number,
    clock: Clock,
  ): Promise<{ sent: boolean; gone: boolean; elapsedMs: number }> {
    const started = clock.now();
    const sent = await this.terminate(pid);
    for (;;) {
      if (!(await this.backendExists(pid))) return { sent, gone: true, elapsedMs: clock.now() - started };
      if (clock.now() - started >= withinMs) return { sent, gone: false, elapsedMs: clock.now() - started };
      await new Promise<void>((resolve) => clock.setTimeout(resolve, VERIFY_EVERY_MS));
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await this.end(c);
  }

  /** Ending a connection that already failed may fail too; that is logged, and the probe goes on. */
  private async end(client: Client): Promise<void> {
    try {
      await client.end();
    } catch (err) {
      this.logger.debug({ err: errorMessage(err) }, 'postgres connection end failed');
    }
  }
}

/** Inside the configured scope: every one of applicationName, usename and datname that is set matches, and no superuser unless allowed. */
export function inScope(q: ActiveQuery, cfg: PgConfig): boolean {
  if (q.superuser && !cfg.includeSuperusers) return false;
  if (cfg.applicationName === null && cfg.usename === null && cfg.datname === null) return false;
  return (
    (cfg.applicationName === null || cfg.applicationName.test(q.applicationName)) &&
    (cfg.usename === null || cfg.usename === q.usename) &&
    (cfg.datname === null || cfg.datname === q.datname)
  );
}

/** Which of the active queries are ours to end: in scope, and past maxQuery or, on a clean start, past its olderThan. */
export function overrunning(qs: ActiveQuery[], cfg: PgConfig, cleanStart: boolean): ActiveQuery[] {
  return qs.filter(
    (q) =>
      inScope(q, cfg) &&
      (q.runningMs > cfg.maxQueryMs ||
        (cleanStart && cfg.cleanStart !== null && q.runningMs >= cfg.cleanStart.olderThanMs)),
  );
}
