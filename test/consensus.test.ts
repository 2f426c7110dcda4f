import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Action, type Proposal } from '../lib/actions/action';
import { systemClock } from '../lib/clock';
import { compileConfig } from '../lib/config/config';
import { arbitrate, type ArbiterInput } from '../lib/consensus/arbiter';
import { OrchestratorConsensus } from '../lib/consensus/consensus';
import type { DaemonContext } from '../lib/daemon-runtime';
import { openDb, type Db } from '../lib/db';
import { readEvents, SqliteEventLog } from '../lib/event-log';
import type { EventSource } from '../lib/event-kinds';
import { doorbellPath, ringDoorbell, watchDoorbell } from '../lib/actions/doorbell';
import { makeGrantor } from '../lib/actions/make-grantor';
import type { ProposalRow } from '../lib/actions/proposals';
import { silentLogger } from '../lib/logger';
import { joinOrCreateRun, setControl } from '../lib/run-registry';
import { JsonStateStore } from '../lib/state-store';
import { tmpDir, waitFor } from './helpers/tmp';

const row = (
  actionId: number,
  target: string,
  type: string,
  priority: ProposalRow['priority'],
  actor = 'worker-sentry',
  createdAt = actionId,
): ProposalRow => ({
  actionId,
  actor,
  type,
  target,
  priority,
  createdAt,
  status: 'pending',
  grantedBy: null,
  reason: null,
});
const input = (pending: ProposalRow[], extra: Partial<ArbiterInput> = {}): ArbiterInput => ({
  pending,
  leases: new Map(),
  inFlight: 0,
  maxConcurrent: 10,
  paused: false,
  breaker: 'closed',
  breakerEscalationId: null,
  halfOpenTrialInFlight: false,
  ...extra,
});
const granted = (v: ReturnType<typeof arbitrate>) =>
  v
    .filter((x) => x.grant)
    .map((x) => x.actionId)
    .sort((a, b) => a - b);

describe('arbiter rules', () => {
  it('one actor per target: a leased target is denied', () => {
    const v = arbitrate(
      input([row(1, 'worker:a', 'restart_worker', 'recovery', 'hang-guard')], {
        leases: new Map([['worker:a', { holder: 'worker-sentry', actionId: 9 }]]),
      }),
    );
    expect(v[0]).toMatchObject({ grant: false, reason: 'target is leased by worker-sentry for action 9' });
  });

  it('duplicates merge: a hang-guard stop and a sentry restart become one restart', () => {
    const v = arbitrate(
      input([
        row(1, 'worker:a', 'stop_worker', 'recovery', 'hang-guard'),
        row(2, 'worker:a', 'restart_worker', 'recovery'),
      ]),
    );
    expect(granted(v)).toEqual([2]);
    expect(v.find((x) => x.actionId === 1)?.reason).toBe('merged into action 2 (restart_worker by worker-sentry)');
  });

  it('priority: safety before recovery before capacity under the concurrency limit', () => {
    const v = arbitrate(
      input(
        [
          row(1, 'lane:cpu', 'launch_worker', 'capacity'),
          row(2, 'worker:b', 'restart_worker', 'recovery'),
          row(3, 'worker:c', 'stop_worker', 'safety'),
          row(4, 'worker:d', 'restart_worker', 'recovery'),
        ],
        { maxConcurrent: 1 },
      ),
    );
    expect(granted(v)).toEqual([2, 3]);
    expect(v.find((x) => x.actionId === 4)?.reason).toMatch(/concurrency limit/);
    expect(v.find((x) => x.actionId === 1)?.reason).toMatch(/concurrency limit/);
  });

  it('a global limit on concurrent actions, safety exempt', () => {
    const v = arbitrate(
      input([row(1, 'worker:a', 'restart_worker', 'recovery'), row(2, 'worker:b', 'stop_worker', 'safety')], {
        inFlight: 4,
        maxConcurrent: 4,
      }),
    );
    expect(granted(v)).toEqual([2]);
  });

  it('pause denies everything but safety', () => {
    const v = arbitrate(
      input([row(1, 'worker:a', 'restart_worker', 'recovery'), row(2, 'worker:b', 'stop_worker', 'safety')], {
        paused: true,
      }),
    );
    expect(granted(v)).toEqual([2]);
    expect(v.find((x) => x.actionId === 1)?.reason).toMatch(/paused/);
  });

  it('an open breaker denies all but safety; half-open lets one trial through', () => {
    const p = [
      row(1, 'worker:a', 'restart_worker', 'recovery'),
      row(2, 'worker:b', 'restart_worker', 'recovery'),
      row(3, 'worker:c', 'quarantine', 'safety'),
    ];
    expect(granted(arbitrate(input(p, { breaker: 'open', breakerEscalationId: 7 })))).toEqual([3]);
    const half = arbitrate(input(p, { breaker: 'half-open' }));
    expect(granted(half)).toEqual([1, 3]);
    expect(half.find((x) => x.actionId === 1)?.trial).toBe(true);
    expect(granted(arbitrate(input(p, { breaker: 'half-open', halfOpenTrialInFlight: true })))).toEqual([3]);
  });
});

describe('consensus over a real SQLite file', () => {
  let stop: (() => void) | null = null;
  afterEach(() => stop?.());

  function setup(selfGrantAfter = '2s') {
    const dir = tmpDir();
    const config = compileConfig(
      { name: 't', stateDir: dir, consensus: { selfGrantAfter }, jobs: { j: { command: ['true'] } } },
      path.join(dir, 'c.json'),
      {},
    );
    const db = openDb(dir);
    const { run } = joinOrCreateRun(db, 't', Date.now());
    const deps = (db2: Db, actor: EventSource) => ({
      log: new SqliteEventLog(db2, { source: actor, runId: () => run.id }),
      grantor: makeGrantor(db2, systemClock, config),
      actor,
      now: Date.now,
      logger: silentLogger,
    });
    return { dir, config, db, run, deps };
  }

  function startConsensus(s: ReturnType<typeof setup>): { c: OrchestratorConsensus; ctx: DaemonContext } {
    const c = new OrchestratorConsensus();
    const ctx: DaemonContext = {
      name: 'orchestrator-consensus',
      config: s.config,
      db: s.db,
      log: new SqliteEventLog(s.db, { source: 'orchestrator-consensus', runId: () => s.run.id }),
      state: new JsonStateStore(s.dir),
      clock: systemClock,
      logger: silentLogger,
      run: s.run,
    };
    c.start(ctx);
    stop = () => c.stop();
    return { c, ctx };
  }

  it('two daemons propose on one target at once: exactly one action runs', async () => {
    const s = setup();
    startConsensus(s);
    // Separate connections, as separate daemons have.
    const sentryDb = openDb(s.dir);
    const guardDb = openDb(s.dir);
    const p: Proposal = {
      type: 'restart_worker',
      target: 'worker:w',
      priority: 'recovery',
      reason: 'stale',
      incidentId: null,
    };
    const [a, b] = await Promise.all([
      Action.propose(s.deps(sentryDb, 'worker-sentry'), p),
      Action.propose(s.deps(guardDb, 'hang-guard'), { ...p, type: 'stop_worker', reason: 'runtime exceeded' }),
    ]);
    expect([a.granted, b.granted].filter(Boolean)).toHaveLength(1);
    const winner = a.granted ? a : b;
    expect(winner.record.type).toBe('restart_worker');
    const events = readEvents(s.db, { target: 'worker:w' });
    expect(events.filter((e) => e.kind === 'action.granted')).toHaveLength(1);
    expect(events.find((e) => e.kind === 'action.granted')?.data.grantedBy).toBe('consensus');
    expect(String(events.find((e) => e.kind === 'action.denied')?.data.reason)).toMatch(/^merged into action/);
    // While the winner runs, nobody else gets the target.
    const again = await Action.propose(s.deps(guardDb, 'hang-guard'), { ...p, type: 'stop_worker' });
    expect(again.granted).toBe(false);
    winner.started();
    winner.verified({});
    expect((await Action.propose(s.deps(guardDb, 'hang-guard'), { ...p, type: 'stop_worker' })).granted).toBe(true);
  });

  it('the doorbell: a proposer rings, the watcher hears it', async () => {
    const dir = tmpDir();
    let rings = 0;
    const w = watchDoorbell(dir, () => (rings += 1));
    if ('error' in w) throw w.error;
    try {
      expect(fs.statSync(doorbellPath(dir)).mode & 0o777).toBe(0o600);
      ringDoorbell(dir);
      await waitFor('a ring heard', () => rings > 0, 5000, 10);
    } finally {
      w.watcher.close();
    }
  });

  it('with its doorbell file removed, consensus still decides, and listens again on its next tick', async () => {
    const s = setup('20s');
    const { c, ctx } = startConsensus(s);
    const sentryDb = openDb(s.dir);
    const propose = (target: `worker:${string}`) =>
      Action.propose(s.deps(sentryDb, 'worker-sentry'), {
        type: 'restart_worker',
        target,
        priority: 'recovery',
        reason: 'crash',
        incidentId: null,
      });
    expect((await propose('worker:d1')).granted).toBe(true);
    expect(c.snapshot().doorbell).toBe('listening');
    fs.rmSync(doorbellPath(s.dir));
    await waitFor('the lost watch noticed', () => c.snapshot().doorbell === 'polling', 5000, 10);
    // The next ring makes a new file that nobody watches yet: the poll decides.
    expect((await propose('worker:d2')).granted).toBe(true);
    c.tick(ctx);
    expect(c.snapshot().doorbell).toBe('listening');
    expect((await propose('worker:d3')).granted).toBe(true);
    const grants = readEvents(s.db, { kindPrefix: 'action.granted' }).map((e) => e.data.grantedBy);
    expect(grants).toEqual(['consensus', 'consensus', 'consensus']);
    sentryDb.close();
  });

  it('a repair of orchestrator-consensus is not asked of it: the proposer decides at once, under the lease', async () => {
    const s = setup('60s');
    const t0 = Date.now();
    const repair = (actor: EventSource) =>
      Action.propose(s.deps(s.db, actor), {
        type: 'restart_daemon',
        target: 'daemon:orchestrator-consensus',
        priority: 'safety',
        reason: 'pid 1 is stopped (SIGSTOP)',
        incidentId: null,
      });
    const a = await repair('watchdog');
    expect(a.granted).toBe(true);
    // Far inside the 60 s it would otherwise have waited for a consensus that is not running.
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(readEvents(s.db, { kindPrefix: 'action.granted' })[0]?.data.grantedBy).toBe('self');
    const decided = s.db
      .prepare<[], { reason: string }>(
        "SELECT reason FROM proposals WHERE target = 'daemon:orchestrator-consensus' ORDER BY action_id LIMIT 1",
      )
      .get();
    expect(decided?.reason).toBe('consensus does not arbitrate its own repair');
    // One actor per target still holds: a second repairer meanwhile is refused.
    const b = await repair('hang-guard');
    expect(b.granted).toBe(false);
    expect(b.deniedReason).toMatch(/leased by watchdog/);
  });

  it('with consensus down, a proposal is granted by the proposer itself after the grace period', async () => {
    const s = setup('300ms');
    const t0 = Date.now();
    const a = await Action.propose(s.deps(s.db, 'worker-sentry'), {
      type: 'restart_worker',
      target: 'worker:x',
      priority: 'recovery',
      reason: 'crash',
      incidentId: null,
    });
    expect(a.granted).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(readEvents(s.db, { kindPrefix: 'action.granted' })[0]?.data.grantedBy).toBe('self');
    setControl(s.db, 'paused', 'true');
    const b = await Action.propose(s.deps(s.db, 'worker-sentry'), {
      type: 'restart_worker',
      target: 'worker:y',
      priority: 'recovery',
      reason: 'crash',
      incidentId: null,
    });
    expect(b.granted).toBe(false);
  });
});
