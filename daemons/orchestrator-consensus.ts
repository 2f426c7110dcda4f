// orchestrator-consensus: owns arbitration. Grants or denies the actions the
// other daemons propose: one actor per target, priorities, merged
// duplicates, a concurrency limit, pause mode, the circuit breaker; and
// writes the swarm's scores.
import { OrchestratorConsensus } from '../lib/consensus/consensus';
import { runDaemon } from '../lib/daemon-main';

runDaemon('orchestrator-consensus', () => new OrchestratorConsensus());
