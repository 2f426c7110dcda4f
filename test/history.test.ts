import path from 'node:path';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
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

function swarmWith(events: number, keyFile: string | null = null): { dir: string; cfg: string } {
  const dir = tmpDir();
  const db = openDb(dir);
  const hmacKey = keyFile ? fs.readFileSync(keyFile) : null;
  const log = new SqliteEventLog(db, {
    source: 'worker-sentry',
    runId: () => 'r-1',
    projection: { file: path.join(dir, PROJECTION_FILE) },
    anchor: ChainAnchor.in(dir),
    hmacKey,
  });
  for (let i = 0; i < events; i++) log.append({ kind: 'worker.launched', target: 'worker:a', data: { i } });
  log.close();
  db.close();
  const cfg = path.join(dir, 'swarm.config.json');
  fs.writeFileSync(
    cfg,
    JSON.stringify({
      name: 't',
      stateDir: '.',
      ...(keyFile ? { history: { hmacKeyFile: keyFile } } : {}),
      jobs: { a: { command: ['true'] } },
    }),
  );
  return { dir, cfg };
}

function keyFile(mode = 0o600): string {
  const file = path.join(tmpDir(), 'swarm-hmac.key');
  fs.writeFileSync(file, randomBytes(32), { mode });
  fs.chmodSync(file, mode);
  return file;
}

/** Rehashes the whole chain after an edit, as someone who can write swarm.db but has no key would. */
function rehashAfterEdit(dir: string, seq: number): void {
  const db = new Database(path.join(dir, 'swarm.db'));
  db.exec('DROP TRIGGER events_no_update');
  db.prepare('UPDATE events SET data = \'{"i":99}\' WHERE seq = ?').run(seq);
  let prev = GENESIS_HASH;
  for (const r of db.prepare<[], Row>('SELECT * FROM events ORDER BY seq').all()) {
    const h = hashRow(prev, r);
    db.prepare('UPDATE events SET hash = ? WHERE seq = ?').run(h, r.seq);
    prev = h;
  }
  db.close();
}

const verifyLog = (cfg: string) => {
  const r = spawnSync(path.join(ROOT, 'scripts', 'swarmctl'), ['verify-log', '--json', '--config', cfg], {
    encoding: 'utf8',
  });
  return { status: r.status, out: JSON.parse(r.stdout) as { ok: boolean; badSeq?: number; reason?: string } };
};

/** As an attacker with the file: triggers dropped, then `sql`. */
function tamper(dir: string, sql: string): void {
  const db = new Database(path.join(dir, 'swarm.db'));
  db.exec(
    `DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete; DROP TRIGGER IF EXISTS events_insert_next; ${sql}`,
  );
  db.close();
}

describe('the history', () => {
  it('anchors its head outside swarm.db, trailing the log by one append at most', () => {
    const { dir, cfg } = swarmWith(10);
    expect(readAnchor(dir)).toMatchObject({ seq: 9, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(fs.statSync(path.join(dir, 'chain_head.json')).mode & 0o777).toBe(0o600);
    expect(verifyLog(cfg)).toEqual({ status: 0, out: expect.objectContaining({ ok: true, count: 10 }) });
  });

  it('a reader that meets the anchor mid-rewrite reads it again instead of calling the log broken', () => {
    // The anchor is rewritten in place by every appending daemon; a read racing a write can see half of
    // each record (measured on this machine: about 1 read in 4,000 while a writer loops).
    const good = JSON.stringify({ seq: 7, hash: 'b'.repeat(64) });
    const torn = `${good.slice(0, 40)}${'a'.repeat(30)}`;
    const reads = (texts: string[]) => {
      let i = 0;
      return () => texts[Math.min(i++, texts.length - 1)] ?? null;
    };
    expect(readAnchor('/nowhere', reads([torn, torn, good]))).toEqual({ seq: 7, hash: 'b'.repeat(64) });
    // Garbage that stays is garbage.
    expect(readAnchor('/nowhere', reads([torn]))).toEqual({ error: expect.stringMatching(/holds no head anchor/) });
  });

  it('rows cut off its end are found, by the anchor even when the projection mark is fixed too', () => {
    const { dir, cfg } = swarmWith(10);
    tamper(dir, 'DELETE FROM events WHERE seq > 6;');
    const r = verifyLog(cfg);
    expect(r.status).toBe(1);
    expect(r.out).toMatchObject({ ok: false, badSeq: 7, reason: expect.stringMatching(/projection mark says 10/) });
    tamper(dir, 'UPDATE projection SET last_seq = 6;');
    expect(verifyLog(cfg).out).toMatchObject({
      ok: false,
      badSeq: 7,
      reason: expect.stringMatching(/head anchor outside swarm.db names seq 9/),
    });
  });

  it('a chain recomputed after an edit is found by the anchor', () => {
    const { dir, cfg } = swarmWith(10);
    rehashAfterEdit(dir, 3);
    const again = openDb(dir, { readonly: true });
    expect(verifyChain(again)).toMatchObject({ ok: true });
    again.close();
    expect(verifyLog(cfg).out).toMatchObject({
      ok: false,
      badSeq: 9,
      reason: expect.stringMatching(/no longer has the hash the head anchor recorded/),
    });
  });

  it('with an HMAC key, a rehash by someone without the key is found at the edited row, anchor or not', () => {
    const key = keyFile();
    const { dir, cfg } = swarmWith(10, key);
    expect(verifyLog(cfg)).toEqual({ status: 0, out: expect.objectContaining({ ok: true, count: 10 }) });
    rehashAfterEdit(dir, 3);
    fs.rmSync(path.join(dir, 'chain_head.json'));
    expect(verifyLog(cfg)).toEqual({
      status: 1,
      out: expect.objectContaining({ ok: false, badSeq: 3, reason: expect.stringMatching(/mac does not match/) }),
    });
  });

  it('with an HMAC key, rows appended without it are found; a key that is loose, short or inside the state folder is refused', () => {
    const key = keyFile();
    const { dir, cfg } = swarmWith(4, key);
    const db = openDb(dir);
    new SqliteEventLog(db, { source: 'watchdog', runId: () => 'r-1' }).append({
      kind: 'worker.launched',
      target: 'worker:a',
    });
    db.close();
    expect(verifyLog(cfg).out).toMatchObject({
      ok: false,
      badSeq: 5,
      reason: expect.stringMatching(/appended without the key/),
    });
    const run = (file: string) => {
      fs.writeFileSync(
        cfg,
        JSON.stringify({
          name: 't',
          stateDir: '.',
          history: { hmacKeyFile: file },
          jobs: { a: { command: ['true'] } },
        }),
      );
      return spawnSync(path.join(ROOT, 'scripts', 'swarmctl'), ['verify-log', '--config', cfg], { encoding: 'utf8' });
    };
    expect(run(keyFile(0o644))).toMatchObject({
      status: 2,
      stderr: expect.stringMatching(/mode 644: it must be its owner's alone/),
    });
    const short = path.join(tmpDir(), 'short.key');
    fs.writeFileSync(short, 'abc', { mode: 0o600 });
    expect(run(short)).toMatchObject({ status: 2, stderr: expect.stringMatching(/holds 3 bytes/) });
    const inside = path.join(dir, 'inside.key');
    fs.writeFileSync(inside, randomBytes(32), { mode: 0o600 });
    expect(run(inside)).toMatchObject({
      status: 2,
      stderr: expect.stringMatching(/history.hmacKeyFile: expected a file outside the state folder/),
    });
  });

  it('INSERT OR REPLACE cannot swap a row: an insert must be the next seq', () => {
    const { dir } = swarmWith(5);
    const db = new Database(path.join(dir, 'swarm.db'));
    const row = db.prepare<[], Row>('SELECT * FROM events WHERE seq = 3').get() as Row;
    expect(() =>
      db
        .prepare(
          'INSERT OR REPLACE INTO events (seq, ts, run_id, source, kind, target, severity, action_id, data, hash) VALUES (?,?,?,?,?,?,?,?,?,?)',
        )
        .run(
          3,
          row.ts,
          row.run_id,
          row.source,
          row.kind,
          row.target,
          row.severity,
          row.action_id,
          '{"i":99}',
          row.hash,
        ),
    ).toThrow(/an insert must be the next seq/);
    expect(() =>
      db
        .prepare(
          'INSERT INTO events (seq, ts, run_id, source, kind, target, severity, action_id, data, hash) VALUES (?,?,?,?,?,?,?,?,?,?)',
        )
        .run(9, row.ts, row.run_id, row.source, row.kind, row.target, row.severity, row.action_id, '{}', row.hash),
    ).toThrow(/an insert must be the next seq/);
    expect((db.prepare('SELECT data FROM events WHERE seq = 3').get() as { data: string }).data).toBe('{"i":2}');
    db.close();
  });

  it('a garbage anchor is reported, not ignored', () => {
    const { dir, cfg } = swarmWith(3);
    fs.writeFileSync(path.join(dir, 'chain_head.json'), 'nonsense');
    expect(verifyLog(cfg)).toEqual({
      status: 1,
      out: expect.objectContaining({ ok: false, reason: expect.stringMatching(/holds no head anchor/) }),
    });
  });
});
