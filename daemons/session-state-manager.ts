// session-state-manager: owns the run: its id and continuity across restarts,
// heartbeat files, next steps for a person, and run completion.
import { runDaemon } from '../lib/daemon-main';
import { SessionStateManager } from '../lib/session/session-manager';

runDaemon('session-state-manager', () => new SessionStateManager());
