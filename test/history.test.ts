import path from 'node:path';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ChainAnchor, readAnchor } from '../lib/chain-anchor';
import { openDb } from '../lib/db';
import { GENESIS_HASH, hashRow, type Row } from '../lib/event-row';
import { SqliteEventLog, verifyChain } from '../lib/event-log';
import { PROJECTION_FILE } from '../lib/projection';
import { ROOT } from './helpers/swarm';
import { tmpDir } from './helpers/tmp';

// A history that cannot be quietly rewritten, against someone who can write
// swarm.db: rows cut off its end, the chain recomputed after an edit, a row
// swapped with INSERT OR REPLACE. Real SQLite files, edited as an attacker
// would, with the sqlite driver.

function swarmWith(events: number): { dir: string; cfg: string } {
  const dir = tmpDir();
  const db = openDb(dir);
  const log = new SqliteEventLog(db, { source: 'worker-sentry', runId: () => 'r-1', projection: { file: path.join(dir, PROJECTION_FILE) }, anchor: ChainAnchor.in(dir) });
  for (let i = 0; i < events; i++) log.append({ kind: 'worker.launched', target: 'worker:a', data: { i } });
  log.close();
  db.close();
  const cfg = path.join(dir, 'swarm.config.json');
  fs.writeFileSync(cfg, JSON.stringify({ name: 't', stateDir: '.', jobs: { a: { command: ['true'] } } }));
  return { dir, cfg };
}

const verifyLog = (cfg: string) => {
  const r = spawnSync(path.join(ROOT, 'scripts', 'swarmctl'), ['verify-log', '--json', '--config', cfg], { encoding: 'utf8' });
  return { status: r.status, out: JSON.parse(r.stdout) as { ok: boolean; badSeq?: number; reason?: string } };
};

/** As an attacker with the file: triggers dropped, then `sql`. */
function tamper(dir: string, sql: string): void {
  const db = new Database(path.join(dir, 'swarm.db'));
  db.exec(`DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete; DROP TRIGGER IF EXISTS events_insert_next; ${sql}`);
  db.close();
}

describe('the history', () => {
  it('anchors its head outside swarm.db, trailing the log by one append at most', () => {
    const { dir, cfg } = swarmWith(10);
    expect(readAnchor(dir)).toMatchObject({ seq: 9, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(fs.statSync(path.join(dir, 'chain_head.json')).mode & 0o777).toBe(0o600);
    expect(verifyLog(cfg)).toEqual({ status: 0, out: expect.objectContaining({ ok: true, count: 10 }) });
  });

  it('rows cut off its end are found, by the anchor even when the projection mark is fixed too', () => {
    const { dir, cfg } = swarmWith(10);
    tamper(dir, 'DELETE FROM events WHERE seq > 6;');
    const r = verifyLog(cfg);
    expect(r.status).toBe(1);
    expect(r.out).toMatchObject({ ok: false, badSeq: 7, reason: expect.stringMatching(/projection mark says 10/) });
    tamper(dir, 'UPDATE projection SET last_seq = 6;');
    expect(verifyLog(cfg).out).toMatchObject({ ok: false, badSeq: 7, reason: expect.stringMatching(/head anchor outside swarm.db names seq 9/) });
  });

  it('a chain recomputed after an edit is found by the anchor', () => {
    const { dir, cfg } = swarmWith(10);
    const db = new Database(path.join(dir, 'swarm.db'));
    db.exec('DROP TRIGGER events_no_update');
    // Edit seq 3 and rehash everything after it, so the chain itself is intact.
    db.prepare("UPDATE events SET data = '{\"i\":99}' WHERE seq = 3").run();
    let prev = GENESIS_HASH;
    for (const r of db.prepare<[], Row>('SELECT * FROM events ORDER BY seq').all()) {
      const h = hashRow(prev, r);
      db.prepare('UPDATE events SET hash = ? WHERE seq = ?').run(h, r.seq);
      prev = h;
    }
    db.close();
    const again = openDb(dir, { readonly: true });
    expect(verifyChain(again)).toMatchObject({ ok: true });
    again.close();
    expect(verifyLog(cfg).out).toMatchObject({ ok: false, badSeq: 9, reason: expect.stringMatching(/no longer has the hash the head anchor recorded/) });
  });

  it('INSERT OR REPLACE cannot swap a row: an insert must be the next seq', () => {
    const { dir } = swarmWith(5);
    const db = new Database(path.join(dir, 'swarm.db'));
    const row = db.prepare<[], Row>('SELECT * FROM events WHERE seq = 3').get() as Row;
    expect(() => db.prepare('INSERT OR REPLACE INTO events (seq, ts, run_id, source, kind, target, severity, action_id, data, hash) VALUES (?,?,?,?,?,?,?,?,?,?)')
      .run(3, row.ts, row.run_id, row.source, row.kind, row.target, row.severity, row.action_id, '{"i":99}', row.hash)).toThrow(/an insert must be the next seq/);
    expect(() => db.prepare('INSERT INTO events (seq, ts, run_id, source, kind, target, severity, action_id, data, hash) VALUES (?,?,?,?,?,?,?,?,?,?)')
      .run(9, row.ts, row.run_id, row.source, row.kind, row.target, row.severity, row.action_id, '{}', row.hash)).toThrow(/an insert must be the next seq/);
    expect((db.prepare('SELECT data FROM events WHERE seq = 3').get() as { data: string }).data).toBe('{"i":2}');
    db.close();
  });

  it('a garbage anchor is reported, not ignored', () => {
    const { dir, cfg } = swarmWith(3);
    fs.writeFileSync(path.join(dir, 'chain_head.json'), 'nonsense');
    expect(verifyLog(cfg)).toEqual({ status: 1, out: expect.objectContaining({ ok: false, reason: expect.stringMatching(/holds no head anchor/) }) });
  });
});
