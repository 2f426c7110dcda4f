import path from 'node:path';
import type { z } from 'zod';
import { ChainAnchor } from './chain-anchor';
import type { Clock, TimerHandle } from './clock';
import { iso } from './clock';
import { loadConfigText, type CompiledConfig } from './config/config';
import { publishedConfig, publishIfNone, type PublishedConfig } from './config/reload';
import type { Db } from './db';
import { errorMessage } from './errors';
import type { DaemonName } from './event-kinds';
import { SqliteEventLog, type EventLog } from './event-log';
import { Lifecycle } from './lifecycle';
import { Timings, TICK_BUCKETS_S } from './timings';
import { diskFree, HOLD_BELOW_BYTES, type DiskFree } from './disk-space';
import type { Logger } from './logger';
import { PROJECTION_FILE } from './projection';
import { configRedactor } from './redact';
import { joinOrCreateRun, type RunRecord } from './run-registry';
import { DAEMON_STATE_FILES, DaemonHeaderSchema, type DaemonLifecycle } from './state-files';
import type { StateStore } from './state-store';

// What every daemon shares: join the run, then tick on an injected clock;
// after each tick write a heartbeat into the daemon's own state file. Stop
// cleanly on request, never in the middle of a tick.

const DAEMON_MOVES: Record<DaemonLifecycle, readonly DaemonLifecycle[]> = {
  starting: ['running', 'stopping', 'errored'],
  running: ['stopping', 'errored'],
  stopping: ['stopped', 'errored'],
  stopped: [],
  errored: [],
};

export interface DaemonContext {
  name: DaemonName;
  config: CompiledConfig;
  db: Db;
  log: EventLog;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  run: RunRecord;
}

export interface DaemonBehavior {
  /** Runs once, after the run is joined and before the first tick. */
  start?(ctx: DaemonContext, runtime: DaemonRuntime): Promise<void> | void;
  /**
   * A reload published a new config: called before it replaces ctx.config,
   * it returns the config to run (the sentry keeps removed jobs whose
   * workers still run). Without it, the new config is taken as it is.
   */
  reconfigure?(
    ctx: DaemonContext,
    next: CompiledConfig,
    published: PublishedConfig,
  ): Promise<CompiledConfig> | CompiledConfig;
  tick(ctx: DaemonContext): Promise<void> | void;
  /** The daemon's own part of its state file. */
  snapshot(ctx: DaemonContext): Record<string, unknown>;
  stop?(ctx: DaemonContext): Promise<void> | void;
  /**
   * Ticks were held for `heldMs` because the state folder's disk was full
   * (nothing could be recorded): called before the first tick after, so a
   * daemon whose clocks ran on meanwhile (a worker's progress, another
   * daemon's heartbeat) does not take the pause for a fault.
   */
  afterHold?(ctx: DaemonContext, heldMs: number): void;
}

export interface RuntimeDeps {
  name: DaemonName;
  config: CompiledConfig;
  db: Db;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  /** The key of the event log's keyed chain (history.hmacKeyFile), loaded and checked at start; null: none. */
  hmacKey: Buffer | null;
  /** Free space of a folder's disk (lib/disk-space.ts); a test gives its own. */
  diskFree?: (dir: string) => DiskFree | null;
}

export class DaemonRuntime {
  private readonly lifecycle: Lifecycle<DaemonLifecycle>;
  private timer: TimerHandle | null = null;
  private ticking: Promise<void> | null = null;
  private ticks = 0;
  private lastTickAt: number | null = null;
  private readonly startedAt: number;
  private restarts = 0;
  private ctx: DaemonContext | null = null;
  private wake: (() => void) | null = null;
  private pokedWhileTicking = false;
  private log: SqliteEventLog | null = null;
  private refusedVersion: string | null = null;
  /** How long this process's ticks take (the config adopted, the behavior's tick). */
  private readonly tickTimings = new Timings(TICK_BUCKETS_S);
  /** Since when ticks are held for a full disk, or null. */
  private heldSince: number | null = null;
  private adoptedAt: string | null = null;

  constructor(
    private readonly deps: RuntimeDeps,
    private readonly behavior: DaemonBehavior,
  ) {
    this.startedAt = deps.clock.now();
    this.lifecycle = new Lifecycle<DaemonLifecycle>(deps.name, 'starting', DAEMON_MOVES, (from, to, reason) =>
      deps.logger.info({ daemon: deps.name, from, to, reason }, 'daemon transition'),
    );
  }

  get state(): DaemonLifecycle {
    return this.lifecycle.state;
  }

  get context(): DaemonContext {
    if (!this.ctx) throw new Error(`${this.deps.name}: context used before start`);
    return this.ctx;
  }

  async start(): Promise<DaemonContext> {
    const { name, config, db, state, clock, logger } = this.deps;
    const { run, created } = joinOrCreateRun(db, config.name, clock.now());
    const log = new SqliteEventLog(db, {
      source: name,
      runId: () => run.id,
      now: () => clock.now(),
      projection: { file: path.join(config.stateDir, PROJECTION_FILE), maxBytes: config.eventLogMaxBytes },
      redactor: configRedactor(config),
      anchor: ChainAnchor.in(config.stateDir),
      hmacKey: this.deps.hmacKey,
    });
    const previous = state.read(DAEMON_STATE_FILES[name], DaemonHeaderSchema);
    this.restarts = previous.ok && previous.value.runId === run.id ? previous.value.restarts + 1 : 0;
    if (created)
      log.append({
        kind: 'run.started',
        target: `run:${run.id}`,
        data: { name: config.name, config: config.file, message: `run ${run.id} started (${config.name})` },
      });
    log.append({
      kind: 'daemon.started',
      target: `daemon:${name}`,
      data: { pid: process.pid, restarts: this.restarts, message: `${name} started pid=${process.pid}` },
    });
    this.ctx = { name, config, db, log, state, clock, logger, run };
    this.log = log;
    publishIfNone(db, config, iso(clock.now()));
    this.adoptedAt = publishedConfig(db)?.at ?? null;
    await this.behavior.start?.(this.ctx, this);
    this.lifecycle.to('running', 'started');
    this.writeState();
    this.schedule(0);
    return this.ctx;
  }

  /**
   * Runs a tick now instead of waiting for the timer: used when an exit file
   * appears. A poke during a tick runs the next one as soon as it ends, so
   * the second of two exits a few milliseconds apart is not left a tick.
   */
  poke(): void {
    if (this.wake) this.wake();
    else if (this.ticking) this.pokedWhileTicking = true;
  }

  private schedule(delayMs: number): void {
    if (this.lifecycle.state !== 'running') return;
    let fired = false;
    const fire = () => {
      if (fired) return;
      fired = true;
      this.timer?.cancel();
      this.wake = null;
      this.ticking = this.tickOnce().finally(() => {
        this.ticking = null;
        const again = this.pokedWhileTicking;
        this.pokedWhileTicking = false;
        this.schedule(again ? 0 : (this.ctx?.config ?? this.deps.config).tickMs);
      });
    };
    this.wake = fire;
    this.timer = this.deps.clock.setTimeout(fire, delayMs);
  }

  /** Takes on a config a reload published, between two ticks, so no tick sees two configs. */
  private async adoptConfig(ctx: DaemonContext): Promise<void> {
    const published = publishedConfig(ctx.db);
    // The same version again counts only as `reload --now` after the plain reload already applied it.
    if (!published || (published.version === ctx.config.version && !(published.now && published.at !== this.adoptedAt)))
      return;
    this.adoptedAt = published.at;
    let next: CompiledConfig;
    try {
      next = loadConfigText(published.text, published.file);
    } catch (err) {
      // Validated before it was published; only an environment this daemon lacks can fail it here.
      if (this.refusedVersion !== published.version)
        this.deps.logger.error(
          { daemon: this.deps.name, version: published.version, err: errorMessage(err) },
          'published config refused',
        );
      this.refusedVersion = published.version;
      return;
    }
    const from = ctx.config.version;
    ctx.config = (await this.behavior.reconfigure?.(ctx, next, published)) ?? next;
    this.log?.setRedactor(configRedactor(ctx.config));
    this.deps.logger.info({ daemon: this.deps.name, from, to: ctx.config.version }, 'config applied');
  }

  /**
   * Near a full disk a tick could act and then fail to record what it did,
   * or leave half its records: the tick is held instead, the daemon stays
   * online, and ticks resume once there is room (twice the floor, so a disk
   * at the edge does not flap).
   */
  private holdForDisk(ctx: DaemonContext): boolean {
    const free = (this.deps.diskFree ?? diskFree)(ctx.config.stateDir);
    const floor = this.heldSince === null ? HOLD_BELOW_BYTES : 2 * HOLD_BELOW_BYTES;
    const now = this.deps.clock.now();
    if (free !== null && free.freeBytes < floor) {
      if (this.heldSince === null) {
        this.heldSince = now;
        this.deps.logger.error(
          { daemon: this.deps.name, dir: free.dir, freeBytes: free.freeBytes, holdBelowBytes: HOLD_BELOW_BYTES },
          'ticks held: the state folder disk is full',
        );
      }
      return true;
    }
    if (this.heldSince === null) return false;
    const heldMs = now - this.heldSince;
    this.heldSince = null;
    this.deps.logger.warn({ daemon: this.deps.name, heldMs, freeBytes: free?.freeBytes ?? null }, 'ticks resumed');
    try {
      this.behavior.afterHold?.(ctx, heldMs);
    } catch (err) {
      this.deps.logger.error({ daemon: this.deps.name, err: errorMessage(err) }, 'after-hold step failed');
    }
    return false;
  }

  private async tickOnce(): Promise<void> {
    const ctx = this.context;
    if (this.holdForDisk(ctx)) return;
    const started = process.hrtime.bigint();
    try {
      await this.adoptConfig(ctx);
      await this.behavior.tick(ctx);
    } catch (err) {
      // A bad tick must not kill the daemon: the next one retries from state.
      this.deps.logger.error(
        { daemon: this.deps.name, err: errorMessage(err), stack: (err as Error).stack },
        'tick failed',
      );
    }
    this.tickTimings.observe(Number(process.hrtime.bigint() - started) / 1e9);
    this.ticks += 1;
    this.lastTickAt = this.deps.clock.now();
    try {
      this.writeState();
    } catch (err) {
      this.deps.logger.error({ daemon: this.deps.name, err: errorMessage(err) }, 'state write failed');
    }
  }

  /**
   * Writes the state file now, mid-tick, before a step a successor must know
   * of (ending a worker's processes): a daemon killed between that step and
   * its tick's end leaves its intent on disk, as a write-ahead log would.
   */
  checkpoint(): void {
    try {
      this.writeState();
    } catch (err) {
      this.deps.logger.error({ daemon: this.deps.name, err: errorMessage(err) }, 'checkpoint write failed');
    }
  }

  /**
   * Writes a state file this daemon owns. If it was deleted or corrupted since
   * the last write, the rewrite is the repair: record both.
   */
  writeOwnedState(file: string, value: unknown, schema: z.ZodType): void {
    const problem = this.deps.state.writeChecked(file, value, schema);
    if (!problem || !this.ctx) return;
    const target = `state:${file}` as const;
    const d = this.ctx.log.append({
      kind: 'detect.state_corrupt',
      target,
      severity: 'warn',
      data: { class: 'state_corrupt', file, reason: problem, message: `${file} was ${problem}` },
    });
    this.ctx.log.append({
      kind: 'state.repaired',
      target,
      data: {
        file,
        reason: problem,
        by: this.deps.name,
        incidentId: d.seq,
        how: 'rewritten by its owner from memory',
        message: `${file} rewritten by ${this.deps.name}`,
      },
    });
  }

  private writeState(): void {
    const ctx = this.context;
    this.writeOwnedState(
      DAEMON_STATE_FILES[this.deps.name],
      {
        daemon: this.deps.name,
        pid: process.pid,
        runId: ctx.run.id,
        lifecycle: this.lifecycle.state,
        startedAt: iso(this.startedAt),
        lastTickAt: this.lastTickAt === null ? null : iso(this.lastTickAt),
        tickMs: ctx.config.tickMs,
        configVersion: ctx.config.version,
        ticks: this.ticks,
        restarts: this.restarts,
        appendSeconds: this.log?.timings.snapshot() ?? null,
        tickSeconds: this.tickTimings.snapshot(),
        ...this.behavior.snapshot(ctx),
      },
      DaemonHeaderSchema,
    );
  }

  async stop(reason: string): Promise<void> {
    if (this.lifecycle.state === 'stopping' || this.lifecycle.state === 'stopped') return;
    this.lifecycle.to('stopping', reason);
    this.timer?.cancel();
    this.wake = null;
    if (this.ticking) await this.ticking;
    if (this.ctx) {
      try {
        await this.behavior.stop?.(this.ctx);
        this.ctx.log.append({
          kind: 'daemon.stopped',
          target: `daemon:${this.deps.name}`,
          data: { pid: process.pid, reason, message: `${this.deps.name} stopped: ${reason}` },
        });
      } catch (err) {
        this.deps.logger.error({ daemon: this.deps.name, err: errorMessage(err) }, 'stop failed');
      }
    }
    this.lifecycle.to('stopped', reason);
    if (this.ctx) this.writeState();
  }
}
