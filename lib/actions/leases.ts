import type { Db } from '../db';

// One actor per target: before acting on `worker:x`, an actor takes the lease
// on it in SQLite. Leases expire, so a holder that died frees its targets.
// acquired_at and expires_at are on the swarm's clock (lib/clock.ts), which a
// stepped wall clock does not move; acquired_wall is the wall clock, for a
// person reading the table.

export interface Lease {
  target: string;
  holder: string;
  actionId: number | null;
  expiresAt: number;
}

export interface LeaseStore {
  acquire(
    target: string,
    holder: string,
    actionId: number | null,
    ttlMs: number,
  ): { ok: true } | { ok: false; heldBy: Lease };
  release(target: string, holder: string): void;
}

export class SqliteLeaseStore implements LeaseStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  acquire(
    target: string,
    holder: string,
    actionId: number | null,
    ttlMs: number,
  ): { ok: true } | { ok: false; heldBy: Lease } {
    return this.db
      .transaction(() => {
        const now = this.now();
        const row = this.db
          .prepare<[string], { target: string; holder: string; action_id: number | null; expires_at: number }>(
            'SELECT * FROM leases WHERE target = ?',
          )
          .get(target);
        if (row && row.expires_at > now && row.holder !== holder) {
          return {
            ok: false as const,
            heldBy: { target, holder: row.holder, actionId: row.action_id, expiresAt: row.expires_at },
          };
        }
        this.db
          .prepare(
            'INSERT INTO leases (target, holder, action_id, acquired_at, expires_at, acquired_wall) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(target) DO UPDATE SET holder = excluded.holder, action_id = excluded.action_id, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at, acquired_wall = excluded.acquired_wall',
          )
          .run(target, holder, actionId, now, now + ttlMs, new Date().toISOString());
        return { ok: true as const };
      })
      .immediate();
  }

  release(target: string, holder: string): void {
    this.db.prepare('DELETE FROM leases WHERE target = ? AND holder = ?').run(target, holder);
  }
}
