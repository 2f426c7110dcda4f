import path from 'node:path';
import { Action, actorDeps, type ActionDeps } from '../actions/action';
import type { DaemonBehavior, DaemonContext } from '../daemon-runtime';
import { daemonRepairFor, type DaemonRepair } from '../daemon-repair';
import { DB_FILE } from '../db';
import { errorMessage } from '../errors';
import type { DaemonName } from '../event-kinds';
import type { Grantor } from '../actions/action';
import type { AppInfo, ProcessManager } from '../process-manager';
import { buildSnapshot, daemonView } from '../snapshot';
import { readStateFile } from '../state-store';
import {
  CONTROL_STATE_FILE,
  ControlStateSchema,
  DAEMON_STATE_FILES,
  DaemonHeaderSchema,
  SESSION_LATEST_FILE,
  SessionLatestSchema,
} from '../state-files';
import { pm2Home } from '../pm2-home';
import { ConfigWatch } from './config-watch';
import { boundPm2Logs } from './pm2-logs';
import { QuickCheckRunner, type QuickCheckOutcome } from './quick-check';
import { headerFromLog } from './state-rebuild';
import { DiskWatch } from './disk-watch';
import { WalCheckpointer } from './wal-checkpointer';
import type { z } from 'zod';
import { raiseEscalation } from '../escalations';

// watchdog: owns the control plane. Every daemon present in PM2, online and
// ticking (daemon-repair.ts); state files valid, rebuilt when their owner is
// not there to rewrite them; SQLite checked now and then and its WAL kept
// small (wal-checkpointer.ts: its checkpoints taken off the appends, and
// truncated past watchdog.walCheckpointBytes); free space where Swarm writes watched (disk-watch.ts).

/** PM2's logs grow by what the daemons print: a look every half minute keeps them near the cap. */
const LOG_CHECK_EVERY_MS = 30_000;

export class Watchdog implements DaemonBehavior {
  private repair: DaemonRepair | null = null;
  private lastQuickCheckAt = 0;
  private lastQuickCheck: string | null = null;
  private walBytes = 0;
  private readonly checker = new QuickCheckRunner();
  private readonly configWatch = new ConfigWatch();
  private logsBoundAt = 0;
  private readonly disks = new DiskWatch();
  private walCheckpointer: WalCheckpointer | null = null;

  private readonly actionDeps: (ctx: DaemonContext) => ActionDeps;

  constructor(
    private readonly pm: ProcessManager,
    makeGrantor: (ctx: DaemonContext) => Grantor,
    private readonly watched: () => DaemonName[],
  ) {
    this.actionDeps = actorDeps('watchdog', makeGrantor);
  }

  start(ctx: DaemonContext): void {
    this.repair = daemonRepairFor(ctx, this.pm, () => this.actionDeps(ctx));
    this.quickCheck(ctx);
    this.configWatch.start(ctx);
    this.disks.recover(ctx);
    this.walCheckpointer = new WalCheckpointer(ctx.db, ctx.clock, ctx.logger);
    this.walCheckpointer.start();
  }

  afterHold(): void {
    this.repair?.forgetSightings();
  }

  async tick(ctx: DaemonContext): Promise<void> {
    const now = ctx.clock.now();
    const others = this.watched().filter((n) => n !== 'watchdog');
    let apps: AppInfo[] = [];
    try {
      apps = (await this.repair?.check(others, now)) ?? [];
    } catch (err) {
      ctx.logger.error({ err: errorMessage(err) }, 'daemon check failed');
    }
    // Only a daemon PM2 says is down has nobody to rewrite its files; one still starting will.
    const down = others.filter(
      (n) =>
        apps.length > 0 &&
        apps.find((a) => a.name === n)?.status !== 'online' &&
        apps.find((a) => a.name === n)?.status !== 'launching',
    );
    await this.repairOrphanedStateFiles(ctx, down, now);
    this.disks.check(ctx);
    if (now - this.lastQuickCheckAt >= ctx.config.watchdog.quickCheckEveryMs && !this.checker.running)
      this.quickCheck(ctx);
    this.walBytes = this.walCheckpointer?.truncateIfOver(ctx.log, ctx.config.watchdog.walCheckpointBytes) ?? 0;
    if (apps.length > 0 && now - this.logsBoundAt >= LOG_CHECK_EVERY_MS) {
      this.logsBoundAt = now;
      this.boundLogs(ctx, apps);
    }
  }

  private boundLogs(ctx: DaemonContext, apps: AppInfo[]): void {
    try {
      const r = boundPm2Logs(
        pm2Home(),
        this.watched(),
        apps.map((a) => a.name),
        ctx.config.watchdog.pm2LogMaxBytes,
      );
      for (const t of r.trimmed) ctx.logger.info({ file: t.file, bytes: t.bytes }, 'pm2 log cut back');
      if (r.removed.length > 0) ctx.logger.info({ files: r.removed }, 'logs of deleted workers removed');
    } catch (err) {
      ctx.logger.warn({ err: errorMessage(err) }, 'cannot bound the PM2 logs');
    }
  }

  /** Files whose owner is down: nobody else will rewrite them, so rebuild them here. */
  private async repairOrphanedStateFiles(ctx: DaemonContext, names: DaemonName[], now: number): Promise<void> {
    const dir = ctx.config.stateDir;
    const orphans: { file: string; schema: z.ZodType; rebuild: () => unknown }[] = [];
    for (const name of names) {
      orphans.push({
        file: DAEMON_STATE_FILES[name],
        schema: DaemonHeaderSchema,
        rebuild: () => headerFromLog(ctx.db, name, ctx.run.id, ctx.config.tickMs),
      });
      if (name === 'session-state-manager') {
        orphans.push({
          file: CONTROL_STATE_FILE,
          schema: ControlStateSchema,
          rebuild: () => buildSnapshot(ctx.config, now),
        });
        orphans.push({
          file: SESSION_LATEST_FILE,
          schema: SessionLatestSchema,
          rebuild: () => {
            const s = buildSnapshot(ctx.config, now);
            return {
              runId: ctx.run.id,
              swarm: ctx.config.name,
              status: s.run?.status ?? 'running',
              startedAt: ctx.run.startedAt,
              updatedAt: s.generatedAt,
              tasks: s.tasks,
              problems: s.problems,
              nextSteps: s.nextSteps,
              lastSeq: s.events.lastSeq,
              rebuiltBy: 'watchdog',
            };
          },
        });
      }
    }
    for (const o of orphans) {
      const r = readStateFile(path.join(dir, o.file), o.schema);
      if (r.ok) continue;
      const target = `state:${o.file}` as const;
      const d = ctx.log.append({
        kind: 'detect.state_corrupt',
        target,
        severity: 'warn',
        data: {
          class: 'state_corrupt',
          file: o.file,
          reason: r.error.reason,
          detail: r.error.message,
          message: `${o.file} is ${r.error.reason} and its owner is not running`,
        },
      });
      const action = await Action.propose(this.actionDeps(ctx), {
        type: 'repair_state',
        target,
        priority: 'safety',
        reason: `${o.file} ${r.error.reason}`,
        incidentId: d.seq,
      });
      if (!action.granted) continue;
      action.started();
      ctx.state.write(o.file, o.rebuild());
      const check = readStateFile(path.join(dir, o.file), o.schema);
      if (check.ok) {
        ctx.log.append({
          kind: 'state.repaired',
          target,
          actionId: action.id,
          data: {
            file: o.file,
            reason: r.error.reason,
            by: 'watchdog',
            how: 'rebuilt from the event log',
            message: `${o.file} rebuilt by watchdog`,
          },
        });
        action.verified({ message: `${o.file} valid again` });
      } else {
        action.failed({ message: `${o.file} still invalid: ${check.error.message}` });
      }
    }
  }

  /** Started here, run in a process of its own (quick-check.ts): on a big swarm.db it takes minutes, and the tick goes on. */
  private quickCheck(ctx: DaemonContext): void {
    this.lastQuickCheckAt = ctx.clock.now();
    this.checker.start(path.join(ctx.config.stateDir, DB_FILE), ctx.config.watchdog.quickCheckEveryMs, (o) => {
      try {
        this.recordQuickCheck(ctx, o);
      } catch (err) {
        ctx.logger.error({ err: errorMessage(err) }, 'cannot record the quick_check result');
      }
    });
  }

  private recordQuickCheck(ctx: DaemonContext, o: QuickCheckOutcome): void {
    const elapsedMs = Math.round(o.elapsedMs);
    if ('error' in o) {
      // No verdict (it was killed, or could not open the file): said, but not taken for corruption.
      ctx.logger.warn({ err: o.error, elapsedMs }, 'quick_check gave no verdict');
      ctx.log.append({
        kind: 'db.checked',
        target: `state:${DB_FILE}`,
        severity: 'warn',
        data: {
          check: 'quick_check',
          result: null,
          error: o.error,
          elapsedMs,
          message: `quick_check gave no verdict: ${o.error}`,
        },
      });
      return;
    }
    const result = o.result;
    this.lastQuickCheck = result;
    if (result === 'ok') {
      ctx.log.append({
        kind: 'db.checked',
        target: `state:${DB_FILE}`,
        severity: 'debug',
        data: { check: 'quick_check', result, elapsedMs, message: 'quick_check ok' },
      });
    } else {
      const d = ctx.log.append({
        kind: 'detect.state_corrupt',
        target: `state:${DB_FILE}`,
        severity: 'critical',
        data: { class: 'state_corrupt', file: DB_FILE, result, message: `quick_check: ${result}` },
      });
      raiseEscalation(ctx.log, {
        target: `state:${DB_FILE}`,
        reason: `swarm.db failed quick_check: ${result}`,
        incidentId: d.seq,
        message: 'swarm.db failed quick_check; stop the swarm and restore it',
      });
    }
  }

  snapshot(ctx: DaemonContext): Record<string, unknown> {
    const now = ctx.clock.now();
    return {
      watched: this.watched().map((n) => daemonView(ctx.config.stateDir, n, now)),
      lastQuickCheck: this.lastQuickCheck,
      lastQuickCheckAt: this.lastQuickCheckAt ? new Date(this.lastQuickCheckAt).toISOString() : null,
      walBytes: this.walBytes,
      disks: this.disks.view(),
      ...(this.repair?.snapshot() ?? {}),
    };
  }

  async stop(): Promise<void> {
    this.checker.stop();
    this.walCheckpointer?.stop();
    await this.configWatch.stop();
    this.pm.close();
  }
}
