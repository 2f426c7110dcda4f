import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readProcStat } from '../lib/proc';
import { currentBootId } from '../lib/process-identity';
import { LOCK_FILE, lockRefusal, readLock } from '../lib/state-lock';
import { PM2, ROOT, TestSwarm } from './helpers/swarm';
import { tmpDir, waitFor } from './helpers/tmp';

// One swarm per state folder, and one per PM2: a second swarm is refused
// with the holder's name instead of taking over, and `down` removes only
// what is its own.

const job = { command: ['node', '-e', 'setInterval(() => {}, 1000)'], replicas: 1 };
const a = new TestSwarm({
  name: 'alpha',
  tick: '250ms',
  lanes: { cpu: { kind: 'cpu', slots: 1, fill: 'slots' } },
  jobs: { j: job },
});
const others: TestSwarm[] = [];

beforeAll(async () => {
  a.up();
  await waitFor('every daemon of alpha started', () => a.events({ kind: 'daemon.started' }).length >= 6, 45_000);
}, 60_000);
afterAll(() => {
  for (const s of others) s.teardown();
  a.teardown();
});

const daemonPids = (s: TestSwarm) =>
  Object.fromEntries(
    (JSON.parse(s.pm2('jlist').replace(/^[^[]*/, '')) as { name: string; pid: number }[]).map((x) => [x.name, x.pid]),
  );

describe('one swarm per state folder', () => {
  it('the lock names the PM2 daemon that runs the swarm; a dead or garbage holder is no holder', () => {
    const lock = readLock(a.stateDir);
    const godPid = Number(fs.readFileSync(path.join(a.pm2Home, 'pm2.pid'), 'utf8'));
    expect(lock).toMatchObject({
      swarm: 'alpha',
      config: a.configFile,
      pm2Home: a.pm2Home,
      pm2Pid: godPid,
      bootId: currentBootId(),
    });
    expect(lockRefusal(a.stateDir, a.pm2Home)).toBeNull();
    expect(lockRefusal(a.stateDir, '/elsewhere')).toMatch(/in use by swarm "alpha"/);
    const dir = tmpDir();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.writeFileSync(
      path.join(dir, LOCK_FILE),
      JSON.stringify({ ...lock, pm2Pid: Number(dead.stdout), pm2StartTicks: readProcStat(process.pid)?.startTicks }),
    );
    expect(lockRefusal(dir, '/elsewhere')).toBeNull();
    fs.writeFileSync(path.join(dir, LOCK_FILE), '{ garbage');
    expect(lockRefusal(dir, '/elsewhere')).toBeNull();
  });

  it('a second swarm on the same state folder, from another PM2_HOME, is refused with the holder named, and starts nothing', () => {
    const b = new TestSwarm({ name: 'beta', stateDir: a.stateDir, tick: '250ms', jobs: { j: job } });
    others.push(b);
    const r = b.ctl('up');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /refused: state folder .* is in use by swarm "alpha" \(config .*\) under the PM2 daemon pid \d+/,
    );
    expect(fs.existsSync(path.join(b.pm2Home, 'pm2.pid'))).toBe(false);
    expect(readLock(a.stateDir)?.swarm).toBe('alpha');
  });

  it('started by `pm2 start ecosystem.config.js` instead, its daemons refuse the folder and leave it alone', async () => {
    const b = new TestSwarm({ name: 'beta2', stateDir: a.stateDir, tick: '250ms', jobs: { j: job } });
    others.push(b);
    const before = Math.max(...a.events().map((e) => e.seq));
    spawnSync(PM2, ['start', path.join(ROOT, 'ecosystem.config.js'), '--only', 'session-state-manager'], {
      env: b.env,
      cwd: b.dir,
      timeout: 60_000,
    });
    const errLog = path.join(b.pm2Home, 'logs', 'session-state-manager-error.log');
    const outLog = path.join(b.pm2Home, 'logs', 'session-state-manager-out.log');
    await waitFor(
      'the refusal in its log',
      () =>
        [errLog, outLog].some((f) => fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes('state folder in use')),
      30_000,
    );
    b.pm2('kill');
    expect(readLock(a.stateDir)?.swarm).toBe('alpha');
    expect(a.events().filter((e) => e.seq > before && e.kind === 'daemon.started')).toEqual([]);
  });

  it("a second swarm in the same PM2, with another state folder, is refused and restarts none of the first one's daemons", () => {
    const pids = daemonPids(a);
    const c = new TestSwarm({ name: 'gamma', tick: '250ms', jobs: { j: job } }, { PM2_HOME: a.pm2Home });
    others.push(c);
    const r = c.ctl('up');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`refused: PM2 \\(PM2_HOME ${a.pm2Home}\\) already runs the swarm of ${a.configFile}`),
    );
    expect(daemonPids(a)).toEqual(pids);
    expect(fs.existsSync(c.stateDir)).toBe(false);
  });

  it("down removes this swarm's daemons and workers only, and frees the folder", async () => {
    const stranger = spawn(
      PM2,
      [
        'start',
        '--namespace',
        'other',
        '--name',
        'swarm-worker-stranger',
        process.execPath,
        '--',
        '-e',
        'setInterval(() => {}, 1000)',
      ],
      { env: a.env, stdio: 'ignore' },
    );
    await new Promise((resolve) => stranger.on('exit', resolve));
    await waitFor("alpha's worker", () => 'swarm-worker-j-0' in daemonPids(a), 30_000);
    const r = a.ctl('down', '--json');
    expect(r.status).toBe(0);
    const removed = (JSON.parse(r.stdout) as { removed: string[] }).removed;
    expect(removed).toEqual(expect.arrayContaining(['watchdog', 'worker-sentry', 'swarm-worker-j-0']));
    expect(removed).not.toContain('swarm-worker-stranger');
    expect(Object.keys(daemonPids(a))).toEqual(['swarm-worker-stranger']);
    expect(readLock(a.stateDir)).toBeNull();
  });
});
