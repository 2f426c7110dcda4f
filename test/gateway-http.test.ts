import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../lib/clock';
import { compileConfig } from '../lib/config/config';
import { GatewayServer } from '../lib/gateway/http-server';
import { swarmRegistry } from '../lib/gateway/metrics';
import { newToken } from '../lib/gateway/token';
import { readEvents } from '../lib/event-log';
import { silentLogger } from '../lib/logger';
import { daemonContext } from './helpers/daemon-context';
import { tmpDir } from './helpers/tmp';

// operator-gateway's HTTP rules without PM2: on an address other than
// loopback every read needs the token; every write needs it, a JSON body and
// no other origin; the writes are recorded as source dashboard. Real
// sockets, a real swarm.db.

const servers: GatewayServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

async function serve(host: string) {
  const dir = tmpDir('swarm-gw-');
  const config = compileConfig(
    {
      name: 'gw',
      stateDir: path.join(dir, 'state'),
      jobs: { j: { command: ['true'] } },
      http: { host, port: 0 },
      // No orchestrator-consensus here: a write's grant is made by the gateway itself after this.
      consensus: { selfGrantAfter: '100ms' },
    },
    path.join(dir, 'swarm.config.json'),
    {},
  );
  const ctx = daemonContext('operator-gateway', config);
  const token = newToken(config.stateDir);
  const server = new GatewayServer({
    registry: swarmRegistry({ config: () => config, db: ctx.db }),
    config: () => config,
    stateDir: () => config.stateDir,
    db: ctx.db,
    // The real clock, as in the daemon: a write waits for consensus on it.
    clock: systemClock,
    logger: silentLogger,
  });
  servers.push(server);
  await server.apply(config.http);
  if (server.state.kind !== 'listening') throw new Error(`not listening: ${JSON.stringify(server.state)}`);
  // Reached through loopback whatever it binds: the rule goes by the address it was told to bind.
  const base = server.state.url.replace('0.0.0.0', '127.0.0.1');
  return { ctx, token, base, server, config };
}

describe('operator-gateway over HTTP', () => {
  it('bound beyond loopback, every read needs the token, by header or ?token=', async () => {
    const { base, token } = await serve('0.0.0.0');
    for (const p of ['/', '/api/query', '/metrics', '/api/samples', '/api/incidents/1'])
      expect((await fetch(`${base}${p}`)).status, p).toBe(401);
    expect((await fetch(`${base}/api/query?token=${'0'.repeat(48)}`)).status).toBe(401);
    expect((await fetch(`${base}/api/query?token=${token}`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const page = await fetch(`${base}/?token=${token}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('/static/uplot.js');
    // uPlot is served from the package, never a CDN.
    expect((await fetch(`${base}/static/uplot.js?token=${token}`)).status).toBe(200);
  });

  it('on loopback reads are open; writes need the token, JSON and the same origin, and are recorded as dashboard', async () => {
    const { base, token, ctx } = await serve('127.0.0.1');
    expect((await fetch(`${base}/api/query`)).status).toBe(200);
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}/api/action`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-swarm-token': token, ...headers },
        body: JSON.stringify(body),
      });
    expect((await post({ op: 'pause' }, { 'x-swarm-token': '' })).status).toBe(401);
    expect((await post({ op: 'pause' }, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post({ op: 'pause' }, { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post({ op: 'explode' })).status).toBe(400);
    expect((await post({ op: 'pause' })).status).toBe(200);
    expect((await post({ op: 'resume' }, { origin: base })).status).toBe(200);
    const restart = await post({ op: 'restart', worker: 'j-1' });
    expect(restart.status).toBe(200);
    expect(await restart.json()).toMatchObject({ granted: true });
    expect((await post({ op: 'ack', id: 999 })).status).toBe(404);
    const mine = readEvents(ctx.db).filter((e) => e.source === 'dashboard');
    expect(mine.map((e) => e.kind)).toEqual(['run.paused', 'run.unpaused', 'action.proposed', 'action.granted']);
    expect(mine[2]).toMatchObject({ target: 'worker:j-1', data: { type: 'restart_worker', priority: 'safety' } });
  });

  it('a port that is taken is a reported state, not a crash', async () => {
    const { server, config } = await serve('127.0.0.1');
    const port = Number(new URL((server.state as { url: string }).url).port);
    const { db } = daemonContext('operator-gateway', config);
    const second = new GatewayServer({
      registry: swarmRegistry({ config: () => config, db }),
      config: () => config,
      stateDir: () => config.stateDir,
      db,
      clock: systemClock,
      logger: silentLogger,
    });
    servers.push(second);
    await second.apply({ host: '127.0.0.1', port });
    expect(second.state).toMatchObject({ kind: 'failed', port, error: expect.stringMatching(/EADDRINUSE/) });
  });
});
