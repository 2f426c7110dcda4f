import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { PM2, ROOT, TestSwarm } from './helpers/swarm';
import { tmpDir, waitFor } from './helpers/tmp';

// `pm2 start ecosystem.config.js` is one of the three ways in. With a bad
// config it must refuse before anything starts, as `swarmctl up` does; and a
// daemon that cannot start later (exit 2) must stay down and be escalated,
// not crash-loop under PM2 or under the watchdog. (A bad config file alone no
// longer stops a restarting daemon once the swarm runs: it starts on the
// config the swarm runs; test/reload.test.ts.)

const BAD = { name: 'bad', tick: 'fast', jobs: { a: { command: [], lane: 'nowhere' } } };
const GOOD = {
  name: 'eco',
  tick: '250ms',
  lanes: { cpu: { kind: 'cpu', slots: 1, fill: 'slots' } },
  jobs: { a: { command: ['node', '-e', '0'] } },
};

type App = { name: string; pid: number; pm2_env: { status: string; restart_time: number; exit_code?: number } };
const jlist = (s: TestSwarm): App[] => JSON.parse(s.pm2('jlist').trim().split('\n').pop() ?? '[]') as App[];

describe('a bad config', () => {
  const swarms: TestSwarm[] = [];
  afterAll(() => swarms.forEach((s) => s.teardown()));

  it('pm2 start ecosystem.config.js refuses before any daemon starts, with the message swarmctl up prints', () => {
    const swarm = new TestSwarm(BAD);
    swarms.push(swarm);
    const up = swarm.ctl('up');
    expect(up.status).toBe(2);
    const r = spawnSync(PM2, ['start', path.join(ROOT, 'ecosystem.config.js')], {
      env: swarm.env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(up.stderr).toMatch(/swarmctl: invalid config .*swarm\.config\.json:\n {2}tick: expected a duration/);
    expect(r.stderr).toContain(up.stderr.trim());
    // Each fault once, though zod's union reports the duration twice.
    expect(up.stderr.match(/tick: /g)).toHaveLength(1);
    expect(jlist(swarm)).toEqual([]);
  }, 90_000);

  it('a daemon that cannot start (its key file gone) exits 2 and stays down; the watchdog escalates once instead of restarting it', async () => {
    const keyDir = tmpDir('swarm-key-');
    const keyFile = path.join(keyDir, 'history.key');
    fs.writeFileSync(keyFile, crypto.randomBytes(32), { mode: 0o600 });
    const swarm = new TestSwarm({ ...GOOD, history: { hmacKeyFile: keyFile } });
    swarms.push(swarm);
    swarm.up();
    await waitFor(
      'every daemon online',
      () => swarm.query().daemons.every((d) => d.status === 'online') || null,
      60_000,
      250,
    );
    fs.rmSync(keyFile);
    swarm.pm2('restart', 'util-controller');
    // PM2 shows "waiting restart" for an app with a restart delay, though stop_exit_codes keeps it down.
    const stopped = await waitFor(
      'util-controller down with exit 2',
      () => jlist(swarm).find((a) => a.name === 'util-controller' && a.pm2_env.exit_code === 2 && !a.pid),
      60_000,
      250,
    );
    const esc = await swarm.waitEvent('escalation.raised', 'daemon:util-controller', () => true, 60_000);
    expect(String(esc.data.reason)).toMatch(/exited 2: it cannot start/);
    // Some watchdog ticks later: no restart tried, by PM2 or the watchdog, and one escalation.
    const watchdogTicks = () => swarm.query().daemons.find((d) => d.name === 'watchdog')?.lastTickAt ?? '';
    const since = watchdogTicks();
    await waitFor(
      'two seconds of watchdog ticks',
      () => (Date.parse(watchdogTicks()) - Date.parse(since) >= 2000 ? true : null),
      30_000,
      250,
    );
    expect(jlist(swarm).find((a) => a.name === 'util-controller')?.pid).toBeFalsy();
    expect(jlist(swarm).find((a) => a.name === 'util-controller')?.pm2_env.restart_time).toBe(
      stopped.pm2_env.restart_time,
    );
    // Once it is known to exit 2, nothing restarts it. (`pm2 restart` shows it stopped for a moment before;
    // a watchdog tick that lands there may try a restart, which fails and leads here.)
    expect(
      swarm.events({ kind: 'action.proposed', target: 'daemon:util-controller' }).filter((e) => e.seq > esc.seq),
    ).toHaveLength(0);
    expect(swarm.events({ kind: 'escalation.raised', target: 'daemon:util-controller' })).toHaveLength(1);
  }, 120_000);
});
