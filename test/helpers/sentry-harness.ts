import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LocalGrantor, type Grantor } from '../../lib/actions/action';
import { SqliteLeaseStore } from '../../lib/actions/leases';
import { compileConfig } from '../../lib/config/config';
import { DaemonRuntime, type DaemonContext } from '../../lib/daemon-runtime';
import { openDb } from '../../lib/db';
import { readEvents } from '../../lib/event-log';
import { silentLogger } from '../../lib/logger';
import type { AppSpec } from '../../lib/process-manager';
import { WorkerSentry } from '../../lib/sentry/sentry';
import { JsonStateStore } from '../../lib/state-store';
import { enqueueTask } from '../../lib/task-queue';
import { daemonContext } from './daemon-context';
import { ManualClock } from './manual-clock';
import { NullProcessManager } from './null-pm';
import { tmpDir, waitFor } from './tmp';

// worker-sentry driven tick by tick on a ManualClock, without PM2, as
// BullMQ tests its lock manager against a narrow context: a ProcessManager
// that starts each app's script (the real worker shim) as a plain child, so
// the real worker runs and the shim writes pid.json and exit.json.

/**
 * Runs each app's script (the real worker shim) as a plain child process, as
 * PM2 would but without its daemon.
 */
export class ChildPm extends NullProcessManager {
  readonly children: ChildProcess[] = [];
  /** The apps actually spawned, in order. */
  readonly started: string[] = [];
  /**
   * A sentry killed inside start(): the call never returns, once it has
   * spawned the app ('after-spawn'), or with the app held unspawned until
   * spawnHeld() (a PM2 that is slow to start it, or never asked to).
   */
  hangStart: 'after-spawn' | 'hold' | null = null;
  private readonly held: AppSpec[] = [];
  override async start(app: AppSpec): Promise<void> {
    const hang = this.hangStart;
    if (hang === 'hold') this.held.push(app);
    else this.spawn(app);
    if (hang) await new Promise<void>(() => undefined);
  }
  spawnHeld(): void {
    for (const app of this.held.splice(0)) this.spawn(app);
  }
  private spawn(app: AppSpec): void {
    this.started.push(app.name);
    const child = spawn(app.interpreter ?? process.execPath, [app.script, ...app.args], {
      cwd: app.cwd,
      env: { ...process.env, ...app.env },
      stdio: 'ignore',
    });
    this.children.push(child);
  }
  killAll(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }
}

const pms: ChildPm[] = [];
/** For a test file's afterAll: every shim a harness started, killed. */
export const killHarnessChildren = (): void => pms.forEach((pm) => pm.killAll());

// Says it is up (its handlers are in place: a SIGTERM before then would end any node process), then exits
// with the code written to its file, once there is one. With `ignoreTerm`, SIGTERM does not end it.
const worker = (ignoreTerm: boolean) =>
  `${ignoreTerm ? "process.on('SIGTERM', () => {}); " : ''}const fs = require('fs'); fs.writeFileSync(process.argv[1] + '.up', ''); setInterval(() => { try { process.exit(Number(fs.readFileSync(process.argv[1], 'utf8'))); } catch {} }, 20);`;

export function sentryHarness(opts: { jobExtra?: Record<string, unknown>; ignoreTerm?: boolean } = {}) {
  const dir = tmpDir('swarm-decide-');
  const config = compileConfig(
    {
      name: 'decide',
      stateDir: path.join(dir, 'state'),
      tick: '200ms',
      watchdog: { staleAfter: '400ms' },
      lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'slots' } },
      jobs: {
        j: {
          command: [process.execPath, '-e', worker(opts.ignoreTerm ?? false)],
          args: [path.join(dir, 'exit-${taskId}')],
          restart: { delay: '1s', budget: 2, window: '1h' },
          ...opts.jobExtra,
        },
      },
    },
    path.join(dir, 'swarm.config.json'),
    {},
  );
  const stateDir = config.stateDir;
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const ctx = daemonContext('worker-sentry', config);
  const { db, clock, run } = ctx;
  const pm = new ChildPm();
  pms.push(pm);
  // A paused swarm denies every recovery action: the way to see a denial here.
  let paused = false;
  const pause = (v: boolean) => void (paused = v);
  // How long each grant takes on the clock: a consensus that is slow to answer, or not there.
  let grantTakesMs = 0;
  const slowGrants = (ms: number) => void (grantTakesMs = ms);
  const grantorOn = (c: ManualClock, d = db): Grantor => {
    const local = new LocalGrantor(new SqliteLeaseStore(d, () => c.now()), () => paused);
    return {
      decide: (...a) => {
        c.t += grantTakesMs;
        return local.decide(...a);
      },
      release: (...a) => local.release(...a),
    };
  };
  const grantor = grantorOn(clock);
  const sentry = new WorkerSentry(pm, () => grantor);
  const submit = (id: string) =>
    enqueueTask(db, {
      runId: run.id,
      id,
      job: 'j',
      args: [],
      lane: 'cpu',
      queuedAt: new Date(clock.now()).toISOString(),
    });
  /** One tick, then the clock moves on by `ms`. */
  const tick = async (ms = 200) => {
    await sentry.tick(ctx);
    clock.t += ms;
  };
  const workerFile = (id: string, f: string) => path.join(stateDir, 'workers', `j-${id}`, f);
  /** The shim has reported the worker's pid (a real process started it), and the worker is up. */
  const launched = async (id: string) => {
    await waitFor(`pid.json of ${id}`, () => fs.existsSync(workerFile(id, 'pid.json')), 10_000, 20);
    await waitFor(`${id} up`, () => fs.existsSync(path.join(dir, `exit-${id}.up`)), 10_000, 20);
    fs.rmSync(path.join(dir, `exit-${id}.up`));
  };
  /** The shim recorded the worker's exit. */
  const exited = (id: string) =>
    waitFor(`exit.json of ${id}`, () => fs.existsSync(workerFile(id, 'exit.json')), 10_000, 20);
  /** The worker exits with `code`; the shim records it. */
  const exit = async (id: string, code: number) => {
    // Renamed into place: a worker polling the file never reads it empty (Number('') is an exit 0).
    fs.writeFileSync(path.join(dir, `exit-${id}.tmp`), String(code));
    fs.renameSync(path.join(dir, `exit-${id}.tmp`), path.join(dir, `exit-${id}`));
    await exited(id);
    fs.rmSync(path.join(dir, `exit-${id}`));
  };
  const kinds = (target: string) => readEvents(db, { target }).map((e) => e.kind);
  const events = (target: string) => readEvents(db, { target });

  /**
   * A sentry as a daemon runs it: under a DaemonRuntime, on its own database
   * connection and clock (a process of its own), reading at start the state
   * file the last one left, which each tick() here writes at its end as the
   * runtime does. A sentry abandoned mid-tick is a sentry killed there: its
   * clock is never moved again.
   */
  async function daemon(): Promise<{
    sentry: WorkerSentry;
    ctx: DaemonContext;
    clock: ManualClock;
    tick: (ms?: number) => Promise<void>;
    tickUntil: (what: string, done: () => boolean, ms?: number) => Promise<void>;
  }> {
    const own = new ManualClock();
    own.t = Math.max(clock.t, ...daemons.map((d) => d.t));
    daemons.push(own);
    const ownDb = openDb(stateDir);
    const ownGrantor = grantorOn(own, ownDb);
    const s = new WorkerSentry(pm, () => ownGrantor);
    const rt = new DaemonRuntime(
      {
        name: 'worker-sentry',
        config,
        db: ownDb,
        state: new JsonStateStore(stateDir),
        clock: own,
        logger: silentLogger,
        hmacKey: null,
      },
      // The test says when the sentry ticks. A tick of the runtime's own (its timer, a poke on an exit file)
      // never ends, so the runtime never writes the state file at a tick's end the test did not make.
      {
        start: (c, r) => s.start(c, r),
        snapshot: (c) => s.snapshot(c),
        tick: () => new Promise<void>(() => undefined),
      },
    );
    const c = await rt.start();
    const tickOnce = async (ms = 200) => {
      await s.tick(c);
      rt.checkpoint();
      own.t += ms;
    };
    return {
      sentry: s,
      ctx: c,
      clock: own,
      tick: tickOnce,
      /** Ticks, `ms` apart on its clock, until `done` holds. */
      tickUntil: async (what, done, ms = 200) => {
        const tickThenAsk = async () => {
          await tickOnce(ms);
          return done();
        };
        await waitFor(what, tickThenAsk, 10_000, 20);
      },
    };
  }
  /** A sentry daemon that has launched task `id` and learned its pid. */
  async function running(id: string) {
    const d = await daemon();
    submit(id);
    await d.tick(1000);
    await d.tick();
    await launched(id);
    await d.tick();
    if (d.sentry.workers.get(`j-${id}`)?.pid == null) throw new Error(`worker j-${id} has no pid`);
    return d;
  }
  const daemons: ManualClock[] = [];

  return {
    ctx,
    clock,
    pm,
    sentry,
    submit,
    tick,
    kinds,
    events,
    launched,
    exited,
    exit,
    pause,
    slowGrants,
    daemon,
    running,
  };
}
