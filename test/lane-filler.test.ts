import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalGrantor } from '../lib/actions/action';
import { compileConfig } from '../lib/config/config';

import { readEvents } from '../lib/event-log';
import { SqliteLeaseStore } from '../lib/actions/leases';
import { silentLogger } from '../lib/logger';
import type { AppSpec } from '../lib/process-manager';
import { requestLaneFill } from '../lib/worker/requests';
import { SlurmCli } from '../lib/slurm/slurm-cli';
import { LaneFiller } from '../lib/sentry/lane-filler';
import type { SentryHost } from '../lib/sentry/sentry-host';
import type { WorkerRecord } from '../lib/worker/record';
import { enqueueTask } from '../lib/task-queue';
import { ManualClock } from './helpers/manual-clock';
import { tmpDir } from './helpers/tmp';
import { daemonContext } from './helpers/daemon-context';
import { NullProcessManager } from './helpers/null-pm';

// Lane filling against a PM2 that is slow to start each app, as under load:
// a fill permit the tick's time box cuts short is honoured on the next
// ticks, under the same action, instead of waiting for a new permit behind
// the last fill's verification.

/** A process manager whose every start takes `startMs` of the injected clock. */
class SlowPm extends NullProcessManager {
  readonly started: string[] = [];
  constructor(
    private readonly clock: ManualClock,
    private readonly startMs: number,
  ) {
    super();
  }
  override async start(app: AppSpec): Promise<void> {
    this.clock.t += this.startMs;
    this.started.push(app.name);
  }
}

function setup(tasks: number) {
  const dir = tmpDir();
  const config = compileConfig(
    {
      name: 'fill',
      stateDir: dir,
      tick: '200ms',
      lanes: { cpu: { kind: 'cpu', slots: 8, fill: 'slots' } },
      jobs: { j: { command: ['true'] } },
    },
    path.join(dir, 'swarm.config.json'),
    {},
  );
  const ctx = daemonContext('worker-sentry', config);
  const { db, log, clock, run } = ctx;
  for (let i = 1; i <= tasks; i++)
    enqueueTask(db, {
      runId: run.id,
      id: `t${i}`,
      job: 'j',
      args: [],
      lane: 'cpu',
      queuedAt: new Date(clock.now()).toISOString(),
    });
  const workers = new Map<string, WorkerRecord>();
  const grantor = new LocalGrantor(new SqliteLeaseStore(db, () => clock.now()), () => false);
  const unused = () => {
    throw new Error('not used by lane filling');
  };
  const host: SentryHost = {
    workers,
    requeuedCounts: {},
    actionDeps: () => ({ log, grantor, actor: 'worker-sentry', now: () => clock.now(), logger: silentLogger }),
    move: (_ctx, w, to) => void (w.status = to),
    setInFlight: (_ctx, w, next) => void (w.inFlight = next),
    act: unused,
    remediate: unused,
    finishPending: unused,
    openIncident: unused,
    closeIncidents: unused,
    raiseEscalation: unused,
    stopProcess: unused,
  };
  return { ctx, db, log, clock, workers, host };
}

describe('lane filling under a slow PM2', () => {
  it('a permit for 6 launches that the time box cuts short is honoured on the next ticks, under one action', async () => {
    const { ctx, db, log, clock, workers, host } = setup(10);
    // Each start takes 600ms: the 1s time box allows two per tick.
    const pm = new SlowPm(clock, 600);
    const filler = new LaneFiller(host, { pm, slurm: new SlurmCli() });
    const fill = log.append({ kind: 'action.proposed', target: 'lane:cpu', data: { type: 'launch_worker', count: 6 } });
    requestLaneFill(db, 'cpu', 6, fill.seq);
    for (let tick = 0; tick < 5; tick++) {
      await filler.fill(ctx, clock.now());
      clock.t += 200;
    }
    expect(pm.started).toHaveLength(6);
    expect([...workers.keys()]).toEqual(['j-t1', 'j-t2', 'j-t3', 'j-t4', 'j-t5', 'j-t6']);
    // Started once, for the first batch; no launch beyond what was granted.
    expect(readEvents(db, { kindPrefix: 'action.started' }).filter((e) => e.actionId === fill.seq)).toHaveLength(1);
    expect(readEvents(db, { kindPrefix: 'task.started' })).toHaveLength(6);
  });

  it('a permit is not carried past a queue that emptied', async () => {
    const { ctx, db, log, clock, host } = setup(1);
    const pm = new SlowPm(clock, 10);
    const filler = new LaneFiller(host, { pm, slurm: new SlurmCli() });
    const fill = log.append({ kind: 'action.proposed', target: 'lane:cpu', data: { type: 'launch_worker', count: 4 } });
    requestLaneFill(db, 'cpu', 4, fill.seq);
    await filler.fill(ctx, clock.now());
    enqueueTask(db, {
      runId: ctx.run.id,
      id: 'late',
      job: 'j',
      args: [],
      lane: 'cpu',
      queuedAt: new Date(clock.now()).toISOString(),
    });
    clock.t += 200;
    await filler.fill(ctx, clock.now());
    // The late task waits for util-controller's next permit: the first one ended when its queue did.
    expect(pm.started).toEqual(['swarm-worker-j-t1']);
  });

  it('a request row that does not parse is dropped and said, and the lane fills as if it were not there', async () => {
    const { ctx, db, host } = setup(1);
    const warned: unknown[] = [];
    const said = { ...ctx, logger: { ...ctx.logger, warn: (o: unknown) => void warned.push(o) } as typeof ctx.logger };
    db.prepare('INSERT INTO control (key, value) VALUES (?, ?)').run(
      'fill:lane:cpu',
      '{"count": "many", "actionId": 1}',
    );
    db.prepare('INSERT INTO control (key, value) VALUES (?, ?)').run('fill:lane:cpu@swarmctl', 'not json');
    const pm = new SlowPm(ctx.clock, 10);
    await new LaneFiller(host, { pm, slurm: new SlurmCli() }).fill(said, ctx.clock.now());
    expect(db.prepare("SELECT count(*) AS n FROM control WHERE key LIKE 'fill:lane:%'").get()).toEqual({ n: 0 });
    expect(warned).toEqual([
      expect.objectContaining({ key: 'fill:lane:cpu', problem: expect.stringMatching(/count/) }),
      expect.objectContaining({ key: 'fill:lane:cpu@swarmctl', problem: expect.stringMatching(/JSON/) }),
    ]);
    expect(pm.started).toEqual([]);
  });
});
