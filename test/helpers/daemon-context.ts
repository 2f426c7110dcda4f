import type { CompiledConfig } from '../../lib/config/config';
import type { DaemonContext } from '../../lib/daemon-runtime';
import { openDb } from '../../lib/db';
import type { DaemonName } from '../../lib/event-kinds';
import { SqliteEventLog } from '../../lib/event-log';
import { silentLogger } from '../../lib/logger';
import { joinOrCreateRun } from '../../lib/run-registry';
import { JsonStateStore } from '../../lib/state-store';
import { ManualClock } from './manual-clock';

/**
 * What a daemon's behavior is given, without its runtime: a real swarm.db in
 * the config's state folder, its run, an event log written as `name`, and a
 * clock the test moves by hand.
 */
export function daemonContext(
  name: DaemonName,
  config: CompiledConfig,
  opts: { clock?: ManualClock; projection?: null } = {},
): DaemonContext & { clock: ManualClock } {
  const db = openDb(config.stateDir);
  const clock = opts.clock ?? new ManualClock();
  const { run } = joinOrCreateRun(db, config.name, clock.now());
  const log = new SqliteEventLog(db, {
    source: name,
    runId: () => run.id,
    ...(opts.projection === null ? { projection: null } : {}),
  });
  return { name, config, db, log, state: new JsonStateStore(config.stateDir), clock, logger: silentLogger, run };
}
