import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { CompiledHttp } from '../config/gateway-schema';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';

// operator-gateway's HTTP server: GET /metrics and nothing else yet. It
// listens where the config's `http` says, again at once when a reload moves
// it, and a port it cannot have is a reported state (and a line in status),
// tried again every RETRY_MS, never a crash.

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

export class MetricsServer {
  private server: http.Server | null = null;
  private wanted: CompiledHttp | null = null;
  state: HttpState = { kind: 'off' };

  constructor(
    private readonly registry: Registry,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  /** Listens as `cfg` says, if it does not already; null closes. */
  async apply(cfg: CompiledHttp | null): Promise<void> {
    const same = cfg !== null && this.wanted !== null && cfg.host === this.wanted.host && cfg.port === this.wanted.port;
    if (same && this.state.kind === 'listening') return;
    if (same && this.state.kind === 'failed' && this.now() - this.state.at < RETRY_MS) return;
    await this.close();
    this.wanted = cfg;
    if (cfg === null) return;
    const server = http.createServer((req, res) => void this.handle(req, res));
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
        this.logger.error({ host: cfg.host, port: cfg.port, err: error }, 'http listen failed');
      this.state = { kind: 'failed', host: cfg.host, port: cfg.port, error, at: this.now() };
      server.close();
      return;
    }
    server.on('error', (err) => this.logger.error({ err: errorMessage(err) }, 'http server error'));
    this.server = server;
    const a = server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    this.state = { kind: 'listening', url: `http://${host}:${a.port}` };
    this.logger.info({ url: this.state.url }, 'http listening');
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    this.state = { kind: 'off' };
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://swarm');
    if (url.pathname !== '/metrics') return send(res, 404, 'text/plain', 'not found: GET /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'GET only\n');
    try {
      send(res, 200, this.registry.contentType, await this.registry.metrics());
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'metrics failed');
      send(res, 500, 'text/plain', `metrics failed: ${errorMessage(err)}\n`);
    }
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
