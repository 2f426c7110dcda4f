import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../lib/config/config';
import { DaemonRepair } from '../lib/daemon-repair';
import type { AppInfo } from '../lib/process-manager';
import type { DaemonView } from '../lib/snapshot';
import { daemonContext } from './helpers/daemon-context';
import { NullProcessManager } from './helpers/null-pm';
import { tmpDir } from './helpers/tmp';

// The judgement behind a daemon's restart for not ticking, fed PM2's entry
// and the daemon's heartbeat as the watchdog reads them. The hour-long soak
// restarted a watchdog whose one tick had waited 4 s on a locked database:
// a daemon is restarted for not ticking only when two judgements a tick
// apart both say so.

function setup() {
  const dir = tmpDir('swarm-confirm-');
  const config = compileConfig(
    { name: 'confirm', stateDir: path.join(dir, 'state'), tick: '1s', watchdog: { staleAfter: '4s' }, jobs: {} },
    path.join(dir, 'swarm.config.json'),
    {},
  );
  fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const ctx = daemonContext('watchdog', config);
  const repair = new DaemonRepair({
    ...ctx,
    pm: new NullProcessManager(),
    actionDeps: () => {
      throw new Error('no action is taken here');
    },
    startFromEcosystem: async () => undefined,
  });
  // A live process that is not stopped: this test's own.
  const app: AppInfo = {
    name: 'worker-sentry',
    pid: process.pid,
    status: 'online',
    restarts: 0,
    namespace: 'confirm',
    configFile: null,
    exitCode: null,
  };
  const view = (tickAgeMs: number | null): DaemonView => ({
    name: 'worker-sentry',
    status: 'online',
    pid: process.pid,
    restarts: 0,
    lastTickAt: null,
    tickAgeMs,
    configVersion: null,
  });
  const t0 = ctx.clock.now();
  const judge = (atMs: number, tickAgeMs: number | null) =>
    repair.diagnose('worker-sentry', app, t0 + atMs, view(tickAgeMs));
  /** The daemon's state file deleted, or unreadable. */
  const missing = (atMs: number) =>
    repair.diagnose('worker-sentry', app, t0 + atMs, { ...view(null), status: 'missing', pid: null });
  return { judge, missing, repair };
}

describe('a daemon not ticking', () => {
  it('is restarted only when still stale a tick after it was first judged stale', () => {
    const { judge } = setup();
    expect(judge(0, 0)).toBeNull();
    expect(judge(5000, 4500)).toBeNull();
    // Less than a tick later: still the same look.
    expect(judge(5500, 5000)).toBeNull();
    expect(judge(6000, 5500)).toMatchObject({ class: 'daemon_stale', reason: 'no tick for 6s (limit 4s)' });
  });

  it('one slow tick is forgiven: a heartbeat between the two looks starts the count again', () => {
    const { judge } = setup();
    expect(judge(0, 0)).toBeNull();
    expect(judge(5000, 4500)).toBeNull();
    expect(judge(6000, 100)).toBeNull();
    expect(judge(11_000, 4100)).toBeNull();
    expect(judge(12_000, 5100)).toMatchObject({ class: 'daemon_stale' });
  });

  it('a missing heartbeat is confirmed the same way; a full disk forgets the first look', () => {
    const { judge, repair } = setup();
    expect(judge(0, null)).toBeNull();
    expect(judge(5000, null)).toBeNull();
    repair.forgetSightings();
    // After the hold every daemon gets a full staleAfter again, then two looks.
    expect(judge(6000, null)).toBeNull();
    expect(judge(10_500, null)).toBeNull();
    expect(judge(11_000, null)).toBeNull();
    expect(judge(11_500, null)).toMatchObject({ class: 'daemon_stale', reason: 'no heartbeat' });
  });

  it('a state file that stays unreadable is confirmed the same way: one deleted while its owner waits on a lock is rewritten in time', () => {
    const { judge, missing } = setup();
    expect(judge(0, 0)).toBeNull();
    expect(missing(1000)).toBeNull();
    // Unreadable for staleAfter: the first look (the hour-long soak's run 5 restarted util-controller here).
    expect(missing(5000)).toBeNull();
    expect(judge(5500, 300)).toBeNull();
    // Missing again, and this time for good: a full staleAfter, then two looks a tick apart.
    expect(missing(6000)).toBeNull();
    expect(missing(10_000)).toBeNull();
    expect(missing(10_500)).toBeNull();
    expect(missing(11_000)).toMatchObject({ class: 'daemon_stale', reason: 'state file unreadable for 5s' });
  });
});
