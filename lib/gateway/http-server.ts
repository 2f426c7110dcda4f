import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Registry } from 'prom-client';
import type { CompiledHttp } from '../config/gateway-schema';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { PACKAGE_ROOT } from '../package-root';
import { incidentEvents, samples, snapshot, WriteSchema, write, type DashboardDeps } from './dashboard-api';
import { EventFeed } from './event-feed';
import { readToken, tokenMatches } from './token';

// operator-gateway's HTTP server: GET /metrics, the dashboard (/, /static/,
// /api/…) and its live feed. It listens where the config's `http` says,
// again at once when a reload moves it, and a port it cannot have is a
// reported state (and a line in status), tried again every RETRY_MS, never
// a crash.
//
// Who may do what: every write needs the token (header X-Swarm-Token), a
// JSON body, and no other origin (a browser's Origin must be this server);
// on an address other than loopback every read needs the token too (header,
// or ?token= for a page and its event stream, as Jupyter's URL carries it).

/**
 *   off         no `http` in the config
 *   listening   serving at `url`
 *   failed      could not listen (the port is taken, the address is not ours); tried again later
 */
export type HttpState =
  | { kind: 'off' }
  | { kind: 'listening'; url: string }
  | { kind: 'failed'; host: string; port: number; error: string; at: number };

const RETRY_MS = 10_000;
const MAX_BODY_BYTES = 4096;
const LOOPBACK = ['127.0.0.1', '::1', 'localhost'];

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'lib/gateway/dashboard/index.html', type: 'text/html; charset=utf-8' },
  '/static/app.js': { file: 'lib/gateway/dashboard/app.js', type: 'text/javascript; charset=utf-8' },
  '/static/app.css': { file: 'lib/gateway/dashboard/app.css', type: 'text/css; charset=utf-8' },
  '/static/uplot.js': { file: 'node_modules/uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  '/static/uplot.css': { file: 'node_modules/uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};

export interface GatewayServerDeps extends DashboardDeps {
  registry: Registry;
  logger: Logger;
  stateDir: () => string;
}

export class GatewayServer {
  private server: http.Server | null = null;
  private wanted: CompiledHttp | null = null;
  private readonly feed: EventFeed;
  state: HttpState = { kind: 'off' };

  constructor(private readonly deps: GatewayServerDeps) {
    this.feed = new EventFeed(deps);
  }

  /** Listens as `cfg` says, if it does not already; null closes. */
  async apply(cfg: CompiledHttp | null): Promise<void> {
    const same = cfg !== null && this.wanted !== null && cfg.host === this.wanted.host && cfg.port === this.wanted.port;
    if (same && this.state.kind === 'listening') return;
    if (same && this.state.kind === 'failed' && this.deps.clock.now() - this.state.at < RETRY_MS) return;
    await this.close();
    this.wanted = cfg;
    if (cfg === null) return;
    const server = http.createServer((req, res) => void this.handle(req, res, cfg));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(cfg.port, cfg.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      const error = errorMessage(err);
      if (this.state.kind !== 'failed' || this.state.error !== error)
        this.deps.logger.error({ host: cfg.host, port: cfg.port, err: error }, 'http listen failed');
      this.state = { kind: 'failed', host: cfg.host, port: cfg.port, error, at: this.deps.clock.now() };
      server.close();
      return;
    }
    server.on('error', (err) => this.deps.logger.error({ err: errorMessage(err) }, 'http server error'));
    this.server = server;
    const a = server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    this.state = { kind: 'listening', url: `http://${host}:${a.port}` };
    this.deps.logger.info({ url: this.state.url }, 'http listening');
  }

  async close(): Promise<void> {
    this.feed.closeAll();
    const s = this.server;
    this.server = null;
    this.state = { kind: 'off' };
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, cfg: CompiledHttp): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://swarm');
    try {
      const token = readToken(this.deps.stateDir());
      const given = req.headers['x-swarm-token'] ?? bearer(req.headers.authorization) ?? url.searchParams.get('token');
      const hasToken = tokenMatches(typeof given === 'string' ? given : null, token);
      if (req.method === 'POST' && url.pathname === '/api/action') return await this.writeAction(req, res, hasToken);
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return send(res, 405, 'text/plain', 'GET, or POST /api/action\n');
      if (!LOOPBACK.includes(cfg.host) && !hasToken)
        return send(res, 401, 'text/plain', 'this address needs the token: swarmctl dashboard prints the URL\n');
      const file = STATIC[url.pathname];
      if (file) return send(res, 200, file.type, fs.readFileSync(path.join(PACKAGE_ROOT, file.file)));
      if (url.pathname === '/metrics')
        return send(res, 200, this.deps.registry.contentType, await this.deps.registry.metrics());
      if (url.pathname === '/api/query') return json(res, 200, snapshot(this.deps));
      if (url.pathname === '/api/samples')
        return json(
          res,
          200,
          samples(this.deps, Number(url.searchParams.get('since') ?? 0) || this.deps.clock.now() - 3_600_000),
        );
      const incident = /^\/api\/incidents\/(\d+)$/.exec(url.pathname);
      if (incident) return json(res, 200, incidentEvents(this.deps, Number(incident[1])));
      if (url.pathname === '/api/events')
        return this.feed.add(req, res, Number(url.searchParams.get('since') ?? 0) || 0);
      return send(res, 404, 'text/plain', 'not found\n');
    } catch (err) {
      this.deps.logger.error({ path: url.pathname, err: errorMessage(err) }, 'http request failed');
      if (!res.headersSent) send(res, 500, 'text/plain', `failed: ${errorMessage(err)}\n`);
      else res.end();
    }
  }

  private async writeAction(req: http.IncomingMessage, res: http.ServerResponse, hasToken: boolean): Promise<void> {
    // A page of another site can POST here from a person's browser; it cannot read the token, set the header
    // without a preflight we never answer, or hide its Origin.
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`)
      return json(res, 403, { error: `cross-origin request refused (Origin ${origin})` });
    if (!hasToken) return json(res, 401, { error: 'the token is required: swarmctl dashboard prints the URL' });
    if (!(req.headers['content-type'] ?? '').startsWith('application/json'))
      return json(res, 415, { error: 'expected application/json' });
    const body = await readBody(req);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return json(res, 400, { error: 'the body is not JSON' });
    }
    const r = WriteSchema.safeParse(parsed);
    if (!r.success) return json(res, 400, { error: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
    const out = await write(this.deps, r.data);
    json(res, out.status, out.body);
  }
}

function bearer(h: string | undefined): string | null {
  return h?.startsWith('Bearer ') ? h.slice('Bearer '.length) : null;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY_BYTES) throw new Error(`body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', `${JSON.stringify(body)}\n`);
}

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
  });
  res.end(body);
}
