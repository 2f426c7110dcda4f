import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ROOT, TestSwarm } from './helpers/swarm';
import { skipReason } from './helpers/system-packages';
import { waitFor } from './helpers/tmp';

// A real Optuna study (Debian's python3-optuna) as a Swarm job: SIGSTOPped
// partway, detected and restarted from its storage, it still reaches its
// trial count, and no trial completed before the stop is lost.

const skip = skipReason(['python3-optuna']);
const STUDY = path.join(ROOT, 'examples', 'optuna', 'study.py');
const TRIALS = 14;

const swarm = new TestSwarm({
  name: 'optuna',
  tick: '250ms',
  lanes: { cpu: { kind: 'cpu', slots: 1, fill: 'slots' } },
  jobs: {
    study: {
      command: ['/usr/bin/python3', STUDY],
      args: ['--trials', String(TRIALS), '--trial-seconds', '0.3'],
      progress: { staleAfter: '4s' },
      startup: { marker: 'optuna study ready', within: '60s' },
      restart: { delay: '200ms', budget: 5 },
    },
  },
  queue: [{ job: 'study', id: 'quadratic' }],
});

const storage = () => path.join(swarm.stateDir, 'checkpoints', 'study-quadratic', 'study.db');
const completedTrials = (): number[] => {
  const db = new Database(storage(), { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return db
      .prepare<[], { number: number }>("SELECT number FROM trials WHERE state = 'COMPLETE' ORDER BY number")
      .all()
      .map((r) => r.number);
  } finally {
    db.close();
  }
};

beforeAll(() => {
  if (!skip) swarm.up();
}, 60_000);
afterAll(() => swarm.teardown());

describe('a real Optuna study under Swarm', () => {
  beforeEach((ctx) => ctx.skip(skip !== null, skip ?? undefined));

  it('is SIGSTOPped partway, restarted from its storage, and finishes with every completed trial kept', async () => {
    const pid = await swarm.workerPid('study-quadratic', 1);
    await waitFor('a few trials done', () => fs.existsSync(storage()) && completedTrials().length >= 3, 60_000, 200);
    process.kill(pid, 'SIGSTOP');
    const before = completedTrials();
    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(before.length).toBeLessThan(TRIALS);
    const stale = await swarm.waitEvent('detect.progress_stale', 'worker:study-quadratic', () => true, 60_000);
    await swarm.waitEvent('action.verified', 'worker:study-quadratic', (e) => e.data.incidentId === stale.seq, 60_000);
    await swarm.waitEvent('task.completed', 'task:quadratic', () => true, 90_000);
    const after = completedTrials();
    expect(after.length).toBeGreaterThanOrEqual(TRIALS);
    expect(after).toEqual(expect.arrayContaining(before));
    const best = JSON.parse(
      fs.readFileSync(path.join(swarm.stateDir, 'checkpoints', 'study-quadratic', 'best.json'), 'utf8'),
    ) as { value: number };
    expect(best.value).toBeGreaterThanOrEqual(0);
    const log = fs.readFileSync(path.join(swarm.stateDir, 'workers', 'study-quadratic', 'output.log'), 'utf8');
    expect(log).toMatch(
      new RegExp(
        `${before.length} of ${TRIALS} trials done \\(attempt 2\\)|[1-9][0-9]* of ${TRIALS} trials done \\(attempt 2\\)`,
      ),
    );
  }, 240_000);
});
