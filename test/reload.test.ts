import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileConfig, configVersion } from '../lib/config/config';
import { publishIfNone } from '../lib/config/reload';
import { openDb } from '../lib/db';
import { DAEMON_NAMES } from '../lib/event-kinds';
import { isAlive } from '../lib/proc';
import { buildSnapshot } from '../lib/snapshot';
import { DAEMON_STATE_FILES } from '../lib/state-files';
import { ROOT, SWARMCTL, TestSwarm } from './helpers/swarm';
import { tmpDir, waitFor } from './helpers/tmp';

// Changing the config of a running swarm without stopping the work, against
// real PM2: a bad file is refused and the running config stays; a good one
// is applied by every daemon with no restart, by `swarmctl reload` and by
// the watchdog's watch on the file; a removed job's worker finishes its
// task, or stops at once with --now.

const SLEEP = path.join(ROOT, 'test', 'fixtures', 'sleep.js');
const base = {
  name: 'reload',
  tick: '250ms',
  lanes: { cpu: { kind: 'cpu', slots: 1, fill: 'slots' } },
  jobs: { long: { command: ['node', SLEEP, '60000'] } },
  queue: [{ job: 'long', id: 'l1' }],
};
const withB = {
  ...base,
  lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'slots' } },
  jobs: { ...base.jobs, quick: { command: ['node', SLEEP, '100'] } },
  queue: [...base.queue, { job: 'quick', id: 'q1' }],
};
const withC = { ...withB, queue: [...withB.queue, { job: 'quick', id: 'q2' }] };
const withD = { ...withC, jobs: { quick: withC.jobs.quick }, queue: withC.queue.filter((q) => q.job === 'quick') };

const swarm = new TestSwarm(base);
beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

const text = (cfg: Record<string, unknown>) => JSON.stringify({ stateDir: 'state', ...cfg }, null, 2);
const versionOf = (cfg: Record<string, unknown>) => configVersion(text(cfg));
const header = (name: string) =>
  JSON.parse(fs.readFileSync(path.join(swarm.stateDir, DAEMON_STATE_FILES[name as 'watchdog']), 'utf8')) as {
    pid: number;
    configVersion?: string;
  };
const versions = () => DAEMON_NAMES.map((n) => header(n).configVersion);
const pm2Restarts = () =>
  (
    JSON.parse(swarm.pm2('jlist').trim().split('\n').pop() ?? '[]') as {
      name: string;
      pm2_env: { restart_time: number };
    }[]
  )
    .map((a) => `${a.name}:${a.pm2_env.restart_time}`)
    .sort();

describe('config reload', () => {
  it('a bad file is refused with exit 2 naming the field, recorded as config.rejected, and the running config stays', async () => {
    await swarm.workerPid('long-l1');
    expect(versions()).toEqual(DAEMON_NAMES.map(() => versionOf(base)));
    // Beside the real file, so only swarmctl reload sees it (the watchdog watches the real one).
    const bad = path.join(swarm.dir, 'bad.json');
    fs.writeFileSync(bad, text({ ...base, tick: 'fast', lanes: { cpu: { kind: 'cpu', slots: 0 } } }));
    const r = spawnSync(SWARMCTL, ['--config', bad, 'reload'], { env: swarm.env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid config .*bad\.json:\n {2}tick: expected a duration/);
    expect(r.stderr).toMatch(/lanes\.cpu\.slots: /);
    const rejected = swarm.events({ kind: 'config.rejected' });
    expect(rejected).toHaveLength(1);
    expect(String(rejected[0]?.data.error)).toMatch(/tick: expected a duration/);
    expect(versions()).toEqual(DAEMON_NAMES.map(() => versionOf(base)));
    // query still answers with the bad file named: from the config the swarm runs, and says so first.
    const q = spawnSync(SWARMCTL, ['--config', bad, 'query', '--json'], {
      env: swarm.env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(q.status).toBe(0);
    const snap = JSON.parse(q.stdout) as { swarm: string; config: { version: string }; problems: string[] };
    expect(snap).toMatchObject({ swarm: 'reload', config: { version: versionOf(base) } });
    expect(snap.problems[0]).toMatch(
      /^invalid config .*bad\.json: so this is the swarm as it runs \(config [0-9a-f]{16}\); fix the file: tick: expected a duration/,
    );
  });

  it('a daemon restarted while the file is bad comes back on the config the swarm runs, not down', async () => {
    fs.writeFileSync(swarm.configFile, text({ ...base, tick: 'soon' }));
    // The watchdog's watch refuses the edit; the swarm runs on.
    await swarm.waitEvent('config.rejected', undefined, (e) => e.source === 'watchdog', 30_000);
    const before = header('util-controller').pid;
    swarm.pm2('restart', 'util-controller');
    await waitFor(
      'util-controller back',
      () => {
        const h = header('util-controller');
        return h.pid !== before && isAlive(h.pid) && h.configVersion === versionOf(base) ? h : null;
      },
      60_000,
      250,
    );
    fs.writeFileSync(swarm.configFile, text(base));
  }, 90_000);

  it('swarmctl reload applies a good file as a diff, in every daemon, restarting no daemon and no worker', async () => {
    const l1 = await swarm.workerPid('long-l1');
    const daemonPids = DAEMON_NAMES.map((n) => header(n).pid);
    const restarts = pm2Restarts();
    fs.writeFileSync(swarm.configFile, text(withB));
    const r = swarm.ctl('reload', '--json');
    expect(r.status).toBe(0);
    // The watchdog's watch may have published the same edit first: then swarmctl finds it applied.
    expect(['reloaded', 'unchanged']).toContain((JSON.parse(r.stdout) as { outcome: string }).outcome);
    const ev = await swarm.waitEvent('config.reloaded', undefined, (e) => e.data.version === versionOf(withB));
    expect(ev.data).toMatchObject({
      previous: versionOf(base),
      diff: { added: ['jobs.quick'], removed: [], changed: expect.arrayContaining(['lanes.cpu.slots', 'queue']) },
    });
    await waitFor(
      'every daemon on the new config',
      () => versions().every((v) => v === versionOf(withB)) || null,
      30_000,
      200,
    );
    // The new lane size, job and queue entry take effect: q1 runs beside l1 on the second slot.
    await swarm.waitEvent('task.completed', 'task:q1', () => true, 30_000);
    expect(await swarm.workerPid('long-l1')).toBe(l1);
    expect(DAEMON_NAMES.map((n) => header(n).pid)).toEqual(daemonPids);
    expect(pm2Restarts()).toEqual(restarts);
    expect(swarm.query().config.version).toBe(versionOf(withB));
  }, 90_000);

  it('an edit of the file is a reload too: the watchdog sees it once the write has finished', async () => {
    fs.writeFileSync(swarm.configFile, text(withC));
    const ev = await swarm.waitEvent('config.reloaded', undefined, (e) => e.data.version === versionOf(withC), 30_000);
    expect(ev.source).toBe('watchdog');
    expect(ev.data.diff).toEqual({ added: [], removed: [], changed: ['queue'] });
    await swarm.waitEvent('task.completed', 'task:q2', () => true, 30_000);
  }, 60_000);

  it("a removed job's worker finishes its task; reload --now stops it at once", async () => {
    const l1 = await swarm.workerPid('long-l1');
    fs.writeFileSync(swarm.configFile, text(withD));
    expect(swarm.ctl('reload').status).toBe(0);
    await waitFor(
      'every daemon on the config without the job',
      () => versions().every((v) => v === versionOf(withD)) || null,
      30_000,
      200,
    );
    const before = swarm.query();
    expect(before.workers.find((w) => w.id === 'long-l1')).toMatchObject({ status: 'running', pid: l1 });
    expect(isAlive(l1)).toBe(true);
    const now = swarm.ctl('reload', '--now');
    expect(now.status).toBe(0);
    const stopped = await swarm.waitEvent(
      'action.verified',
      'worker:long-l1',
      (e) => e.data.type === 'stop_worker',
      30_000,
    );
    expect(stopped.source).toBe('worker-sentry');
    await waitFor('l1 gone', () => (!isAlive(l1) ? true : null), 10_000, 100);
    await waitFor('task l1 failed', () => (swarm.query().tasks.failed >= 1 ? true : null), 10_000, 200);
    expect(swarm.query().problems.filter((p) => /runs config/.test(p))).toEqual([]);
  }, 90_000);
});

describe('status while a reload is on its way', () => {
  it('warns about each running daemon whose config version differs from the one published', () => {
    const dir = tmpDir();
    const config = compileConfig(
      { name: 'warn', stateDir: dir, jobs: { j: { command: ['true'] } } },
      path.join(dir, 'swarm.config.json'),
      {},
    );
    const db = openDb(dir);
    publishIfNone(db, config, new Date().toISOString());
    db.close();
    const now = Date.now();
    const head = (configVersion: string) => ({
      daemon: 'x',
      pid: process.pid,
      runId: 'r',
      lifecycle: 'running',
      startedAt: new Date(now).toISOString(),
      lastTickAt: new Date(now).toISOString(),
      tickMs: 1000,
      ticks: 1,
      restarts: 0,
      configVersion,
    });
    fs.writeFileSync(path.join(dir, DAEMON_STATE_FILES.watchdog), JSON.stringify(head('0123456789abcdef')));
    fs.writeFileSync(path.join(dir, DAEMON_STATE_FILES['hang-guard']), JSON.stringify(head(config.version)));
    const snap = buildSnapshot(config, now);
    expect(snap.config.version).toBe(config.version);
    expect(snap.problems).toContain(
      `daemon watchdog runs config 0123456789abcdef, not ${config.version}: the reload has not reached it yet`,
    );
    expect(snap.problems.filter((p) => /hang-guard runs config/.test(p))).toEqual([]);
  });
});
