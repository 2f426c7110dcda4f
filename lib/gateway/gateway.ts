import type { DaemonBehavior, DaemonContext } from '../daemon-runtime';
import type { Db } from '../db';
import { Notifier } from '../notify/notifier';
import { GatewayServer } from './http-server';
import { swarmRegistry } from './metrics';
import { newToken, readToken } from './token';

// operator-gateway: owns "nobody was told, nobody could look". An escalation
// that waits in `swarmctl status` reaches nobody at 3 a.m.; this daemon sends
// the events people asked for to their webhooks (lib/notify/), and serves
// Prometheus metrics (metrics.ts, http-server.ts). It acts on nothing in the
// swarm, so a crash or hang of it never stops healing; the watchdog restarts
// and verifies it like every daemon, and the cursors in swarm.db let it carry
// on where it stopped.

export class OperatorGateway implements DaemonBehavior {
  private notifier: Notifier | null = null;
  private http: GatewayServer | null = null;

  async start(ctx: DaemonContext): Promise<void> {
    // ctx.config is replaced by a reload; the registry reads the one in force at each scrape.
    // `swarmctl up` makes the dashboard's token; started another way (pm2 start ecosystem.config.js), we do.
    if (readToken(ctx.config.stateDir) === null) newToken(ctx.config.stateDir);
    this.http = new GatewayServer({
      registry: swarmRegistry({ config: () => ctx.config, db: ctx.db }),
      config: () => ctx.config,
      stateDir: () => ctx.config.stateDir,
      db: ctx.db,
      clock: ctx.clock,
      logger: ctx.logger,
    });
    await this.http.apply(ctx.config.http);
    this.notifier = new Notifier({
      db: ctx.db,
      log: ctx.log,
      clock: ctx.clock,
      logger: ctx.logger,
      swarm: ctx.config.name,
      startSeq: () => runStartSeq(ctx.db, ctx.run.id),
      // daemon-main put the config's secrets (secrets.json) into this process's environment.
      secret: (name) => process.env[name],
    });
  }

  async tick(ctx: DaemonContext): Promise<void> {
    this.notifier?.kick(ctx.config.notify);
    await this.http?.apply(ctx.config.http);
  }

  snapshot(ctx: DaemonContext): Record<string, unknown> {
    return { notify: this.notifier?.view(ctx.config.notify) ?? [], http: this.http?.state ?? { kind: 'off' } };
  }

  async stop(): Promise<void> {
    this.notifier?.stop();
    await this.http?.close();
  }
}

/** A new endpoint is told of the current run from its start: the seq before its run.started. */
export function runStartSeq(db: Db, runId: string): number {
  const row = db
    .prepare<[string], { seq: number }>(
      "SELECT seq FROM events WHERE kind IN ('run.started', 'run.resumed') AND run_id = ? ORDER BY seq LIMIT 1",
    )
    .get(runId);
  if (row) return row.seq - 1;
  const last = db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM events').get();
  return last?.seq ?? 0;
}
