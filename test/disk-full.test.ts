import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../lib/db';
import { isAlive } from '../lib/proc';
import { readStateFile } from '../lib/state-store';
import {
  CONTROL_STATE_FILE,
  ControlStateSchema,
  DAEMON_STATE_FILES,
  DaemonHeaderSchema,
  SESSION_LATEST_FILE,
  SessionLatestSchema,
} from '../lib/state-files';
import { TestSwarm } from './helpers/swarm';
import { fillDisk, freeBytes, mountTmpfs, tmpfsUnavailable, unmount } from './helpers/tmpfs';
import { waitFor } from './helpers/tmp';

// The state folder on a small tmpfs, filled by a file: first under
// watchdog.diskMinFree (detect.disk_low and a call to a person, while there
// is room to record them), then to the last byte. The daemons hold their
// ticks and stay online; a worker killed meanwhile keeps its shim, which
// waits to write its exit. Once the file is gone, everything resumes: the
// exit is classified, the worker restarted, the call withdrawn, and the
// event log, swarm.db and every state file are whole.

const noTmpfs = tmpfsUnavailable();
const MiB = 1024 * 1024;

const swarm = new TestSwarm({
  name: 'diskfull',
  tick: '250ms',
  watchdog: { diskMinFree: '24M' },
  lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'slots' } },
  // A worker that writes nothing itself: one that does would fail on the full disk on its own.
  jobs: { work: { command: ['node', '-e', 'setInterval(() => {}, 1000)'] } },
  queue: [{ job: 'work', id: 'a' }],
});

beforeAll(() => {
  if (noTmpfs) return;
  const err = mountTmpfs(swarm.stateDir, '64m');
  if (err) throw new Error(err);
  swarm.up();
}, 60_000);
afterAll(() => {
  swarm.teardown();
  if (!noTmpfs) unmount(swarm.stateDir);
});

const heldLogged = (name: string): boolean => {
  const file = path.join(swarm.pm2Home, 'logs', `${name}-out.log`);
  return fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('ticks held');
};

describe.skipIf(noTmpfs !== null)(
  `a full disk under the state folder${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`,
  () => {
    it('is called out before it fills; the daemons hold and stay up; all resumes whole once there is room', async () => {
      const pid = await swarm.workerPid('work-a', 1);
      const daemons = swarm.query().daemons.map((d) => ({ name: d.name, pid: d.pid }));
      expect(daemons.every((d) => d.pid !== null)).toBe(true);

      // Under the minimum, with room left to say so.
      const filler = path.join(swarm.stateDir, 'filler');
      fillDisk(filler, 16 * MiB);
      const detect = await swarm.waitEvent('detect.disk_low', `state:disk:${swarm.stateDir}`);
      expect(detect.data.freeBytes).toBeLessThan(24 * MiB);
      const raised = await swarm.waitEvent('escalation.raised', `state:disk:${swarm.stateDir}`);

      // To the last byte: every daemon holds its ticks.
      fillDisk(path.join(swarm.stateDir, 'filler2'), 0);
      expect(freeBytes(swarm.stateDir)).toBeLessThan(MiB);
      await waitFor('every daemon holding', () => daemons.every((d) => heldLogged(d.name)), 30_000, 200);
      const shimPid = (
        JSON.parse(fs.readFileSync(path.join(swarm.stateDir, 'workers', 'work-a', 'pid.json'), 'utf8')) as {
          shimPid: number;
        }
      ).shimPid;
      process.kill(pid, 'SIGKILL');
      await waitFor('worker gone', () => !isAlive(pid), 10_000, 50);
      // The shim cannot write the exit yet, and waits for room instead of dying with it.
      const pending = path.join(swarm.stateDir, 'workers', 'work-a', 'exit.json.pending');
      await waitFor('the shim waiting to record the exit', () => fs.existsSync(pending), 15_000, 50);
      expect(isAlive(shimPid)).toBe(true);
      expect(fs.existsSync(path.join(swarm.stateDir, 'workers', 'work-a', 'exit.json'))).toBe(false);
      for (const d of daemons) expect(isAlive(d.pid)).toBe(true);

      // Room again.
      fs.rmSync(filler);
      fs.rmSync(path.join(swarm.stateDir, 'filler2'));
      const exited = await swarm.waitEvent('worker.exited', 'worker:work-a', (e) => e.data.pid === pid, 60_000);
      expect(exited.data.signal).toBe('SIGKILL');
      const out = fs.readFileSync(path.join(swarm.stateDir, 'workers', 'work-a', 'output.log'), 'utf8');
      expect(out).toMatch(/exit\.json written after \d+ failed tries \(ENOSPC\)/);
      expect(fs.existsSync(pending)).toBe(false);
      await swarm.waitEvent('detect.worker_crashed', 'worker:work-a', (e) => e.data.pid === pid);
      await swarm.workerPid('work-a', 2);
      await swarm.waitEvent(
        'escalation.resolved',
        `state:disk:${swarm.stateDir}`,
        (e) => e.data.escalationId === raised.seq,
      );

      // Nobody was restarted: the daemons held, they did not die.
      const q = swarm.query();
      for (const d of daemons) expect(q.daemons.find((x) => x.name === d.name)?.pid).toBe(d.pid);
      expect(swarm.events({ kind: 'daemon.started' })).toHaveLength(daemons.length);
      expect(swarm.events({ kind: 'detect.daemon_stale' })).toEqual([]);

      // Whole: the hash chain, SQLite's own check, every state file, every heartbeat line.
      expect(swarm.ctl('verify-log').status).toBe(0);
      const db = openDb(swarm.stateDir, { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        db.close();
      }
      await waitFor('every state file valid', () =>
        [
          ...Object.values(DAEMON_STATE_FILES)
            .filter((f) => daemons.some((d) => DAEMON_STATE_FILES[d.name as keyof typeof DAEMON_STATE_FILES] === f))
            .map((f) => readStateFile(path.join(swarm.stateDir, f), DaemonHeaderSchema).ok),
          readStateFile(path.join(swarm.stateDir, CONTROL_STATE_FILE), ControlStateSchema).ok,
          readStateFile(path.join(swarm.stateDir, SESSION_LATEST_FILE), SessionLatestSchema).ok,
        ].every(Boolean),
      );
      const runId = q.run?.id as string;
      const beats = fs
        .readFileSync(path.join(swarm.stateDir, `session_state_${runId}.jsonl`), 'utf8')
        .trim()
        .split('\n');
      for (const line of beats) expect(() => JSON.parse(line) as unknown).not.toThrow();
    }, 180_000);
  },
);
