import type { Grantor } from './action';
import type { Clock } from '../clock';
import type { CompiledConfig } from '../config/config';
import type { Db } from '../db';
import { SqliteLeaseStore } from './leases';
import { isPaused } from '../run-registry';
import { ConsensusGrantor } from './consensus-grantor';

/** How every actor (daemons and swarmctl) asks for a grant. */
export function makeGrantor(db: Db, clock: Clock, config: CompiledConfig): Grantor {
  return new ConsensusGrantor(
    db,
    new SqliteLeaseStore(db, () => clock.now()),
    clock,
    () => isPaused(db),
    config.consensus.selfGrantAfterMs,
    config.stateDir,
  );
}
