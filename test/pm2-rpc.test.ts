import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pm2RpcError } from '../lib/errors';
import { createLogger } from '../lib/logger';
import { isAlive } from '../lib/proc';
import type { AppSpec } from '../lib/process-manager';
import { decodeFrames, encodeFrame, Pm2Rpc } from '../lib/pm2-rpc';
import { Pm2RpcProcessManager } from '../lib/pm2-rpc-manager';
import { PM2 } from './helpers/swarm';
import { tmpDir, waitFor } from './helpers/tmp';

// The daemons talk to PM2's God daemon over its RPC socket instead of
// loading PM2's client. Against a real PM2: an app started that way is the
// app PM2's own client starts from the same spec, and restart, stop, delete
// and list do what PM2's client does.

const dir = tmpDir('swarm-pm2rpc-');
const home = path.join(dir, 'pm2');
const env = { ...process.env, PM2_HOME: home };
const pm = new Pm2RpcProcessManager(createLogger('test', 'silent'), home);

const spec = (name: string): AppSpec => ({
  name,
  script: path.join(__dirname, 'fixtures', 'sleep.js'),
  args: ['600'],
  cwd: dir,
  interpreter: process.execPath,
  interpreterArgs: ['--max-semi-space-size=1'],
  env: { SWARM_CONFIG: path.join(dir, 'swarm.config.json'), FOO: 'bar' },
  autorestart: false,
  killTimeoutMs: 3000,
  namespace: 'swarm-rpc',
  outFile: path.join(dir, `${name}.out.log`),
  errorFile: path.join(dir, `${name}.err.log`),
});

beforeAll(() => {
  // `pm2 ping` starts the God daemon for this PM2_HOME.
  expect(spawnSync(PM2, ['ping'], { env, encoding: 'utf8', timeout: 60_000 }).status).toBe(0);
}, 60_000);
afterAll(() => {
  pm.close();
  spawnSync(PM2, ['kill'], { env, timeout: 30_000 });
  try {
    process.kill(Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8')), 'SIGKILL');
  } catch {
    // already gone: what pm2 kill was for
  }
});

/** What PM2 holds of each app: its pm2_env, less what differs from one start to the next. */
async function held(): Promise<Record<string, Record<string, unknown>>> {
  const rpc = new Pm2Rpc(path.join(home, 'rpc.sock'));
  const [list] = await rpc.call('getMonitorData', {});
  rpc.close();
  // Per start, or reported by the running process once it is up (node_version, axm_*).
  const volatile = [
    'pm_id',
    'pm_uptime',
    'created_at',
    'unique_id',
    'pm_pid_path',
    'node_version',
    'axm_monitor',
    'axm_actions',
    'axm_options',
    'axm_dynamic',
  ];
  return Object.fromEntries(
    (list as { name: string; pm2_env: Record<string, unknown> }[]).map((p) => {
      const e: Record<string, unknown> = JSON.parse(JSON.stringify(p.pm2_env).replaceAll(p.name, 'APP'));
      for (const k of volatile) delete e[k];
      const inner = e.env as Record<string, unknown>;
      for (const k of ['pm_id', 'unique_id', 'pm_uptime', 'created_at', 'pm_pid_path']) delete inner[k];
      return [p.name, e];
    }),
  );
}

describe('the frame codec', () => {
  it('reads whole frames however the bytes are split, and leaves a partial one for later', () => {
    const a = encodeFrame([{ type: 'call', method: 'ping', args: [{}] }, '42:7']);
    const b = encodeFrame([{ args: [null, { ok: true, text: 'é' }] }, '42:7']);
    const both = Buffer.concat([a, b]);
    for (let cut = 0; cut <= both.length; cut++) {
      const first = decodeFrames(both.subarray(0, cut));
      const second = decodeFrames(Buffer.concat([first.rest, both.subarray(cut)]));
      const frames = [...first.frames, ...second.frames];
      expect(frames).toEqual([
        [{ type: 'call', method: 'ping', args: [{}] }, '42:7'],
        [{ args: [null, { ok: true, text: 'é' }] }, '42:7'],
      ]);
      expect(second.rest.length).toBe(0);
    }
  });
});

describe("PM2's RPC socket, without PM2's client", () => {
  it('starts the app PM2’s own client starts from the same spec', async () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'helpers', 'pm2-api-start.ts'), JSON.stringify(spec('by-api'))],
      { env, encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    await pm.start(spec('by-rpc'));
    const apps = await waitFor(
      'both online',
      async () => {
        const l = await pm.list();
        return l.filter((a) => a.status === 'online' && a.pid).length === 2 ? l : null;
      },
      30_000,
      100,
    );
    expect(apps.map((a) => [a.name, a.namespace, a.configFile]).sort()).toEqual([
      ['by-api', 'swarm-rpc', path.join(dir, 'swarm.config.json')],
      ['by-rpc', 'swarm-rpc', path.join(dir, 'swarm.config.json')],
    ]);
    const h = await held();
    const api = JSON.parse(JSON.stringify(h['by-api']).replaceAll('by-api', 'APP'));
    const rpc = JSON.parse(JSON.stringify(h['by-rpc']).replaceAll('by-rpc', 'APP'));
    expect(rpc).toEqual(api);
    // Only the spec's env, as with filter_env: nothing of this process's environment.
    expect((rpc.env as Record<string, unknown>).FOO).toBe('bar');
    expect(Object.keys(rpc.env as object)).not.toContain('PATH');
  }, 90_000);

  it('restarts, stops and deletes by name, as PM2’s client does', async () => {
    const before = (await pm.list()).find((a) => a.name === 'by-rpc');
    await pm.restart('by-rpc');
    const after = await waitFor(
      'restarted',
      async () => (await pm.list()).find((a) => a.name === 'by-rpc' && a.status === 'online' && a.pid !== before?.pid),
      30_000,
      100,
    );
    expect(after.restarts).toBe((before?.restarts ?? 0) + 1);
    expect(isAlive(before?.pid as number)).toBe(false);

    // start() of a name PM2 has already restarts it, as pm2.start does: never a second app.
    await pm.start(spec('by-rpc'));
    expect((await pm.list()).filter((a) => a.name === 'by-rpc')).toHaveLength(1);

    await pm.stop('by-rpc');
    expect((await pm.list()).find((a) => a.name === 'by-rpc')?.status).toBe('stopped');
    await pm.delete('by-rpc');
    expect((await pm.list()).map((a) => a.name)).toEqual(['by-api']);
    await expect(pm.delete('by-rpc')).resolves.toBeUndefined();
    await expect(pm.restart('by-rpc')).rejects.toThrow(/not found/);
    await expect(pm.stop('nothing-here')).rejects.toThrow(/not found/);
  }, 60_000);

  it('names the method in every error: an unknown one, and a PM2 that is not there', async () => {
    const rpc = new Pm2Rpc(path.join(home, 'rpc.sock'));
    const err = await rpc.call('noSuchMethod').catch((e: unknown) => e);
    rpc.close();
    expect(err).toBeInstanceOf(Pm2RpcError);
    expect(String(err)).toMatch(/pm2 noSuchMethod: method "noSuchMethod" does not exist/);
    const none = new Pm2RpcProcessManager(createLogger('test', 'silent'), path.join(dir, 'no-pm2-here'));
    await expect(none.list()).rejects.toThrow(/pm2 connect: .*rpc\.sock/);
    none.close();
  });
});
