// watchdog: owns the control plane: every daemon present in PM2, online and
// ticking; state files valid (rebuilt when missing or corrupt); SQLite
// checked and its WAL checkpointed; the config file watched, and an edit
// reloaded (lib/config/reload.ts).
import { runDaemon } from '../lib/daemon-main';
import { ecosystemDaemons } from '../lib/ecosystem';
import { makeGrantor } from '../lib/actions/make-grantor';
import { Pm2RpcProcessManager } from '../lib/pm2-rpc-manager';
import { Watchdog } from '../lib/watchdog/watchdog';

runDaemon(
  'watchdog',
  (deps) =>
    new Watchdog(
      new Pm2RpcProcessManager(deps.logger),
      (ctx) => makeGrantor(ctx.db, ctx.clock, ctx.config),
      ecosystemDaemons,
    ),
);
