// util-controller: owns CPU, memory and GPU use against the targets: fills
// lanes with queued work while use is below target, backs off under memory
// pressure, and checks GPU binding (gpu_fallback, unexpected_gpu_context).
import { runDaemon } from '../lib/daemon-main';
import { makeGrantor } from '../lib/actions/make-grantor';
import { UtilController } from '../lib/utilization/util-controller';

runDaemon('util-controller', () => new UtilController((ctx) => makeGrantor(ctx.db, ctx.clock, ctx.config)));
