// worker-sentry: owns worker lifecycle failures. Launches workers for replicas
// and queued tasks, detects crashes, OOM kills, crash loops, deterministic
// failures, stale progress, stalled logs, missed startup gates and missing
// artifacts, and restarts with backoff inside a budget, or quarantines; on a
// slurm lane, also lost nodes, preemptions, time limits and jobs stuck pending.
import { runDaemon } from '../lib/daemon-main';
import { makeGrantor } from '../lib/actions/make-grantor';
import { Pm2RpcProcessManager } from '../lib/pm2-rpc-manager';
import { WorkerSentry } from '../lib/sentry/sentry';
import { SlurmCli } from '../lib/slurm/slurm-cli';

runDaemon(
  'worker-sentry',
  (deps) =>
    new WorkerSentry(
      new Pm2RpcProcessManager(deps.logger),
      (ctx) => makeGrantor(ctx.db, ctx.clock, ctx.config),
      new SlurmCli(),
    ),
);
