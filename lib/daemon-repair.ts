import { CANNOT_START_EXIT } from './errors';
import { Action, type ActionDeps } from './actions/action';
import type { Clock } from './clock';
import { ECOSYSTEM, type CompiledConfig } from './config/config';
import type { EventLog } from './event-log';
import type { DaemonName } from './event-kinds';
import type { Logger } from './logger';
import { isAlive, isStopped } from './proc';
import type { AppInfo, ProcessManager } from './process-manager';
import { getControl } from './run-registry';
import type { Db } from './db';
import { daemonView, type DaemonView } from './snapshot';
import { raiseEscalation } from './escalations';

// Keeping daemons present, online and ticking. The watchdog runs this over
// every other daemon; hang-guard runs it over the watchdog, which answers
// who watches the watchdog. Each repair is an action, verified by a fresh
// heartbeat from a new pid.
//
//   missing from PM2        -> start it from the ecosystem file
//   stopped or errored      -> restart it
//   alive but not ticking   -> SIGKILL it (a SIGSTOPped process ignores
//                              SIGTERM) and restart it

export interface DaemonRepairDeps {
  config: CompiledConfig;
  db: Db;
  log: EventLog;
  pm: ProcessManager;
  clock: Clock;
  logger: Logger;
  actionDeps: () => ActionDeps;
  startFromEcosystem: (name: DaemonName) => Promise<void>;
}

interface InFlight {
  action: Action;
  oldPid: number | null;
  startedAt: number;
  /** A killed daemon is left to PM2's autorestart first; if that has not happened, we restart it once. */
  nudged: boolean;
}

const NUDGE_AFTER_MS = 8000;

const VERIFY_WITHIN_MS = 30_000;

// PM2 answers a list by measuring every process it holds and sending each
// one's whole environment, so with 100 workers one list costs more than the
// rest of a tick. While every watched daemon's own heartbeat shows it
// online, ticking, with the pid PM2 last reported, the last list is reused
// for up to half the staleness limit; anything else (a stopped, killed,
// frozen or silent daemon) asks PM2 at once.

/** `escalate`: a restart cannot help; a person is told instead. */
export type DaemonFault = {
  class: 'daemon_missing' | 'daemon_stale';
  reason: string;
  pid: number | null;
  app: AppInfo | null;
  escalate?: boolean;
};

/** The repair loop for a daemon that watches others, wired to its context. */
export function daemonRepairFor(
  ctx: { config: CompiledConfig; db: Db; log: EventLog; clock: Clock; logger: Logger },
  pm: ProcessManager,
  actionDeps: () => ActionDeps,
): DaemonRepair {
  return new DaemonRepair({
    config: ctx.config,
    db: ctx.db,
    log: ctx.log,
    pm,
    clock: ctx.clock,
    logger: ctx.logger,
    actionDeps,
    startFromEcosystem: (name) => pm.startEcosystem(ECOSYSTEM, name),
  });
}

export class DaemonRepair {
  private readonly inFlight = new Map<DaemonName, InFlight>();
  private readonly seenAt = new Map<DaemonName, number>();
  private listed: { at: number; apps: AppInfo[] } | null = null;

  constructor(private readonly deps: DaemonRepairDeps) {}

  /**
   * After ticks were held for a full disk, no daemon could write its
   * heartbeat: each gets a full staleAfter again, from now, before it is
   * judged by its file.
   */
  forgetSightings(): void {
    this.seenAt.clear();
    this.unreadableSince.clear();
    this.staleSince.clear();
    this.listed = null;
  }

  /** True while `swarmctl down` takes the swarm apart: nothing is brought back then. */
  private downRequested(): boolean {
    return getControl(this.deps.db, 'swarm.down') === 'true';
  }

  diagnose(
    name: DaemonName,
    app: AppInfo | undefined,
    now: number,
    view: DaemonView = daemonView(this.deps.config.stateDir, name, now),
  ): DaemonFault | null {
    if (!app) return { class: 'daemon_missing', reason: 'not in PM2', pid: null, app: null };
    if (
      app.exitCode === CANNOT_START_EXIT &&
      app.pid === null &&
      app.status !== 'online' &&
      app.status !== 'launching'
    ) {
      // Exit 2 is a daemon that cannot start (a bad config, a key file): restarting it would only
      // crash-loop here instead of under PM2. A person is told once; `swarmctl up` after the fix.
      // (PM2 shows such an app as "waiting restart" when it has a restart delay, but never restarts it.)
      return {
        class: 'daemon_missing',
        reason: `exited ${CANNOT_START_EXIT}: it cannot start (a bad config or key file; see pm2 logs ${name})`,
        pid: null,
        app,
        escalate: true,
      };
    }
    if (app.status === 'stopped' || app.status === 'errored')
      return { class: 'daemon_missing', reason: `PM2 status ${app.status}`, pid: null, app };
    if (app.status !== 'online' || app.pid === null) return null;
    // A daemon gets a full staleAfter from when we first saw this pid before it is judged.
    const firstSeen = this.seenAt.get(name);
    if (firstSeen === undefined || (this.seenPid.get(name) ?? null) !== app.pid) {
      this.staleSince.delete(name);
      this.seenAt.set(name, now);
      this.seenPid.set(name, app.pid);
      return null;
    }
    const staleAfter = this.deps.config.watchdog.staleAfterMs;
    if (isStopped(app.pid))
      return { class: 'daemon_stale', reason: `pid ${app.pid} is stopped (SIGSTOP)`, pid: app.pid, app };
    if (now - firstSeen < staleAfter) return null;
    if (view.status === 'missing') {
      // An unreadable state file is the file's problem first: its owner rewrites it on its next
      // tick. Only if it stays unreadable for staleAfter is the daemon itself not ticking.
      const since = this.unreadableSince.get(name) ?? now;
      this.unreadableSince.set(name, since);
      if (now - since < staleAfter || !this.confirmedStale(name, now)) return null;
      return {
        class: 'daemon_stale',
        reason: `state file unreadable for ${Math.round((now - since) / 1000)}s`,
        pid: app.pid,
        app,
      };
    }
    this.unreadableSince.delete(name);
    if (view.pid !== app.pid || view.tickAgeMs === null || view.tickAgeMs > staleAfter) {
      // Stale at two judgements a tick apart, as a Kubernetes probe has a failureThreshold: a daemon whose
      // one tick waited out a locked database (a few seconds) has ticked again by the second look; a hung
      // one has not. (A SIGSTOPped one is certain at once, above.)
      if (!this.confirmedStale(name, now)) return null;
      return {
        class: 'daemon_stale',
        reason:
          view.tickAgeMs === null
            ? 'no heartbeat'
            : `no tick for ${Math.round(view.tickAgeMs / 1000)}s (limit ${Math.round(staleAfter / 1000)}s)`,
        pid: app.pid,
        app,
      };
    }
    this.staleSince.delete(name);
    return null;
  }

  /**
   * Whether a daemon judged stale now was judged so a tick ago too. A state
   * file deleted while its owner's tick waits out a locked database stays
   * missing until that tick ends, as a heartbeat does: the same second look.
   */
  private confirmedStale(name: DaemonName, now: number): boolean {
    const since = this.staleSince.get(name) ?? now;
    this.staleSince.set(name, since);
    return now - since >= this.deps.config.tickMs;
  }

  private readonly seenPid = new Map<DaemonName, number>();
  /** Daemons that cannot start, escalated once per watchdog life. */
  private readonly escalated = new Set<DaemonName>();
  private readonly unreadableSince = new Map<DaemonName, number>();
  /** When each daemon was first judged not ticking, in the run of judgements that still says so. */
  private readonly staleSince = new Map<DaemonName, number>();

  /** Checks and repairs; returns PM2's view of the apps, for callers that need it too. */
  async check(names: readonly DaemonName[], now: number): Promise<AppInfo[]> {
    if (this.downRequested()) return [];
    // Each daemon's heartbeat is read once a tick, for both the list's reuse and the diagnosis.
    const views = new Map(names.map((n) => [n, daemonView(this.deps.config.stateDir, n, now)]));
    const apps = await this.apps(views, now);
    for (const name of names) {
      const app = apps.find((a) => a.name === name);
      const pending = this.inFlight.get(name);
      if (pending) {
        await this.verify(name, pending, app, now);
        continue;
      }
      const fault = this.diagnose(name, app, now, views.get(name));
      if (fault) await this.repair(name, fault, now);
    }
    return apps;
  }

  private async apps(views: Map<DaemonName, DaemonView>, now: number): Promise<AppInfo[]> {
    const last = this.listed;
    const reuseForMs = Math.max(this.deps.config.tickMs, this.deps.config.watchdog.staleAfterMs / 2);
    const allWell = (apps: AppInfo[]) =>
      [...views].every(([name, view]) => {
        const app = apps.find((a) => a.name === name);
        return app?.status === 'online' && view.status === 'online' && view.pid === app.pid;
      });
    if (last && now - last.at < reuseForMs && this.inFlight.size === 0 && allWell(last.apps)) return last.apps;
    const apps = await this.deps.pm.list();
    this.listed = { at: now, apps };
    return apps;
  }

  private async verify(name: DaemonName, p: InFlight, app: AppInfo | undefined, now: number): Promise<void> {
    const view = daemonView(this.deps.config.stateDir, name, now);
    const fresh =
      view.status === 'online' &&
      view.pid !== null &&
      view.pid !== p.oldPid &&
      view.lastTickAt !== null &&
      Date.parse(view.lastTickAt) > p.startedAt;
    if (fresh) {
      p.action.verified({ message: `${name} back: pid ${view.pid} ticking`, pid: view.pid });
      this.inFlight.delete(name);
      this.seenAt.delete(name);
    } else if (
      !p.nudged &&
      now - p.startedAt > NUDGE_AFTER_MS &&
      app &&
      app.status !== 'online' &&
      app.status !== 'launching'
    ) {
      p.nudged = true;
      await this.deps.pm
        .restart(name)
        .catch((err: unknown) => this.deps.logger.warn({ daemon: name, err: String(err) }, 'restart nudge failed'));
    } else if (now - p.startedAt > VERIFY_WITHIN_MS) {
      p.action.failed({
        message: `${name} did not come back with a fresh heartbeat within ${VERIFY_WITHIN_MS / 1000}s`,
        status: view.status,
      });
      this.inFlight.delete(name);
    }
  }

  private async repair(name: DaemonName, fault: DaemonFault, now: number): Promise<void> {
    const target = `daemon:${name}` as const;
    if (fault.escalate && this.escalated.has(name)) return;
    const detect = this.deps.log.append({
      kind: `detect.${fault.class}`,
      target,
      severity: 'error',
      data: {
        class: fault.class,
        reason: fault.reason,
        pid: fault.pid,
        pm2Status: fault.app?.status ?? null,
        message: `${name}: ${fault.reason}`,
      },
    });
    if (fault.escalate) {
      this.escalated.add(name);
      raiseEscalation(this.deps.log, {
        target,
        reason: `${name} ${fault.reason}`,
        incidentId: detect.seq,
        message: `needs a person: ${name} ${fault.reason}; fix it, then run swarmctl up`,
      });
      return;
    }
    const type = fault.app ? 'restart_daemon' : 'start_daemon';
    // Keeping the control plane alive is a safety action: an open breaker or pause must not stop it.
    const action = await Action.propose(this.deps.actionDeps(), {
      type,
      target,
      priority: 'safety',
      reason: fault.reason,
      incidentId: detect.seq,
    });
    if (!action.granted) return;
    action.started({ pid: fault.pid });
    try {
      if (!fault.app) await this.deps.startFromEcosystem(name);
      else if (fault.pid !== null && isAlive(fault.pid)) {
        // SIGKILL works on a SIGSTOPped process too; PM2's autorestart brings it back.
        process.kill(fault.pid, 'SIGKILL');
      } else await this.deps.pm.restart(name);
      this.inFlight.set(name, { action, oldPid: fault.pid, startedAt: now, nudged: false });
    } catch (err) {
      action.failed({ message: `${type} of ${name} failed: ${(err as Error).message}` });
    }
  }

  snapshot(): Record<string, unknown> {
    return {
      repairsInFlight: [...this.inFlight.entries()].map(([name, p]) => ({
        name,
        actionId: p.action.id,
        since: new Date(p.startedAt).toISOString(),
      })),
    };
  }
}
