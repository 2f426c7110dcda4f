import type { Db } from '../db';
import type { DaemonName } from '../event-kinds';

// A daemon's state file rebuilt from the event log, for when the daemon that
// owns it is not running to rewrite it: who it was, when it started, and how
// it ended, as far as the log says. A running owner repairs its own file.

export function headerFromLog(db: Db, name: DaemonName, runId: string, tickMs: number): Record<string, unknown> {
  const rows = db
    .prepare<[string, string], { kind: string; ts: string; data: string }>(
      "SELECT kind, ts, data FROM events WHERE target = ? AND run_id = ? AND kind IN ('daemon.started', 'daemon.stopped') ORDER BY seq",
    )
    .all(`daemon:${name}`, runId);
  const starts = rows.filter((r) => r.kind === 'daemon.started');
  const lastStart = starts[starts.length - 1];
  const last = rows[rows.length - 1];
  const pid = lastStart ? Number((JSON.parse(lastStart.data) as { pid?: number }).pid ?? 0) : 0;
  return {
    daemon: name,
    pid,
    runId,
    lifecycle: last?.kind === 'daemon.stopped' ? 'stopped' : 'errored',
    startedAt: lastStart?.ts ?? new Date(0).toISOString(),
    lastTickAt: null,
    tickMs,
    ticks: 0,
    restarts: Math.max(0, starts.length - 1),
    rebuiltFrom: 'event log',
  };
}
