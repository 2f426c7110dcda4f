// worker-sentry: owns worker lifecycle failures. Launches workers for replicas
// and queued tasks, detects crashes, OOM kills, crash loops, deterministic
// failures, stale progress, stalled logs, missed startup gates and missing
// artifacts, and restarts with backoff inside a budget, or quarantines.
import { LocalGrantor } from '../lib/actions';
import { runDaemon } from '../lib/daemon-main';
import { SqliteLeaseStore } from '../lib/leases';
import { Pm2ProcessManager } from '../lib/process-manager';
import { isPaused } from '../lib/run-registry';
import { WorkerSentry } from '../lib/sentry/sentry';

runDaemon('worker-sentry', (deps) =>
  new WorkerSentry(new Pm2ProcessManager(deps.logger), (ctx) =>
    new LocalGrantor(new SqliteLeaseStore(ctx.db, () => ctx.clock.now()), () => isPaused(ctx.db)),
  ),
);
