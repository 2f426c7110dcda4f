// session-state-manager: owns the run: its id and continuity across restarts,
// heartbeat files, next steps for a person, run completion, and the jobs'
// schedules (nightly runs).
import { runDaemon } from '../lib/daemon-main';
import { makeGrantor } from '../lib/actions/make-grantor';
import { SessionStateManager } from '../lib/session/session-manager';

runDaemon('session-state-manager', () => new SessionStateManager((ctx) => makeGrantor(ctx.db, ctx.clock, ctx.config)));
