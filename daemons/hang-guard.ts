// hang-guard: owns operations that run too long: a worker past maxRuntime or
// past an operation deadline it declared is ended, process group and all,
// and verified gone. It also keeps the watchdog alive.
import { runDaemon } from '../lib/daemon-main';
import { makeGrantor } from '../lib/actions/make-grantor';
import { HangGuard } from '../lib/hang-guard/hang-guard';
import { Pm2RpcProcessManager } from '../lib/pm2-rpc-manager';

runDaemon(
  'hang-guard',
  (deps) => new HangGuard(new Pm2RpcProcessManager(deps.logger), (ctx) => makeGrantor(ctx.db, ctx.clock, ctx.config)),
);
