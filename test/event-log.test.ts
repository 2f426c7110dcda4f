import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { readAnchor, type ChainHead } from '../lib/chain-anchor';
import { openDb, PAGE_BYTES } from '../lib/db';
import { GENESIS_HASH, hashRow } from '../lib/event-row';
import { readEvents, SqliteEventLog, verifyChain } from '../lib/event-log';
import { formatEventLine, PROJECTION_FILE, projectNow } from '../lib/projection';
import { tmpDir, waitFor } from './helpers/tmp';

const ROOT = path.join(__dirname, '..');
const projection = (dir: string) => ({ file: path.join(dir, PROJECTION_FILE) });

function openLog(dir: string) {
  const db = openDb(dir);
  return {
    db,
    log: new SqliteEventLog(db, { source: 'worker-sentry', runId: () => 'r-1', projection: projection(dir) }),
  };
}

describe('event log', () => {
  it('is WAL, 0700/0600, and appends with strictly increasing seq', () => {
    const dir = path.join(tmpDir(), 'state');
    const { db, log } = openLog(dir);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const a = log.append({ kind: 'worker.launched', target: 'worker:a', data: { n: 1 } });
    const b = log.append({
      kind: 'worker.exited',
      target: 'worker:a',
      severity: 'warn',
      data: { exitCode: 1, signal: null },
    });
    expect(b.seq).toBe(a.seq + 1);
    expect(b.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'swarm.db')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, PROJECTION_FILE)).mode & 0o777).toBe(0o600);
    expect(readEvents(db, { kindPrefix: 'worker' }).map((e) => e.seq)).toEqual([a.seq, b.seq]);
    expect(readEvents(db, { kindPrefix: 'worker.exited' })).toHaveLength(1);
    db.close();
  });

  it('the database itself refuses UPDATE and DELETE', () => {
    const dir = tmpDir();
    const { db, log } = openLog(dir);
    log.append({ kind: 'daemon.started', target: 'daemon:worker-sentry' });
    db.close();
    // A second connection, as any other program on the machine would open.
    const other = new Database(path.join(dir, 'swarm.db'));
    for (const sql of ["UPDATE events SET kind = 'x'", 'DELETE FROM events'])
      expect(() => other.exec(sql)).toThrow(/append-only/);
    other.close();
  });

  it('verifies one snapshot: events appended by a running swarm while it reads are not taken for a cut', () => {
    const dir = tmpDir();
    const { db, log } = openLog(dir);
    for (let i = 0; i < 20; i++) log.append({ kind: 'worker.launched', target: 'worker:a', data: { i } });
    // verify-log's own read-only connection; another daemon appends just after the rows are read.
    const reader = openDb(dir, { readonly: true });
    const prepare = reader.prepare.bind(reader);
    let appended = 0;
    (reader as { prepare: typeof reader.prepare }).prepare = ((sql: string) => {
      if (sql.includes('FROM projection') && appended++ === 0)
        log.append({ kind: 'worker.exited', target: 'worker:a', data: { late: true } });
      return prepare(sql);
    }) as typeof reader.prepare;
    expect(verifyChain(reader)).toMatchObject({ ok: true, count: 20 });
    expect(appended).toBe(1);
    expect(verifyChain(db)).toMatchObject({ ok: true, count: 21 });
    reader.close();
    db.close();
  });

  it('verify-log finds the first tampered row and exits 1', () => {
    const dir = tmpDir();
    const { db, log } = openLog(dir);
    for (let i = 0; i < 20; i++) log.append({ kind: 'worker.launched', target: 'worker:a', data: { i } });
    expect(verifyChain(db)).toMatchObject({ ok: true, count: 20 });
    db.close();
    const cfg = path.join(dir, 'swarm.config.json');
    fs.writeFileSync(cfg, JSON.stringify({ name: 't', stateDir: '.', jobs: { a: { command: ['true'] } } }));
    const ok = spawnSync(path.join(ROOT, 'scripts', 'swarmctl'), ['verify-log', '--json', '--config', cfg], {
      encoding: 'utf8',
    });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, count: 20 });
    // Someone with write access drops the guard and edits history.
    const editor = new Database(path.join(dir, 'swarm.db'));
    editor.exec('DROP TRIGGER events_no_update; UPDATE events SET data = \'{"i":99}\' WHERE seq = 7;');
    editor.close();
    const bad = spawnSync(path.join(ROOT, 'scripts', 'swarmctl'), ['verify-log', '--json', '--config', cfg], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, badSeq: 7 });
  });

  it('the projection survives a crash mid-write; a person deleting it gets a new file from the next event', () => {
    const dir = tmpDir();
    const { db, log } = openLog(dir);
    for (let i = 0; i < 5; i++) log.append({ kind: 'worker.launched', target: 'worker:a', data: { i } });
    const file = path.join(dir, PROJECTION_FILE);
    const committed = fs.readFileSync(file, 'utf8');
    // A writer died after writing a line but before its commit.
    fs.appendFileSync(file, 'half a line from a dead writer');
    log.append({ kind: 'worker.launched', target: 'worker:a', data: { i: 5 } });
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(fs.readFileSync(file, 'utf8').startsWith(committed)).toBe(true);
    expect(lines.map((l) => Number(/seq=(\d+)$/.exec(l)?.[1]))).toEqual([1, 2, 3, 4, 5, 6]);
    fs.rmSync(file);
    projectNow(db, projection(dir));
    // No replay of the history: that is in swarm.db.
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    log.append({ kind: 'worker.launched', target: 'worker:a', data: { i: 6 } });
    expect(
      fs
        .readFileSync(file, 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => Number(/seq=(\d+)$/.exec(l)?.[1])),
    ).toEqual([7]);
    db.close();
  });

  it('a file removed, cut short or moved away under a running writer is continued, never replayed', async () => {
    const dir = tmpDir();
    const { db, log } = openLog(dir);
    const file = path.join(dir, PROJECTION_FILE);
    const seqs = (f = file) =>
      fs
        .readFileSync(f, 'utf8')
        .trimEnd()
        .split('\n')
        .filter(Boolean)
        .map((l) => Number(/seq=(\d+)$/.exec(l)?.[1]));
    for (let i = 0; i < 3; i++) log.append({ kind: 'worker.launched', target: 'worker:a', data: { i } });
    fs.rmSync(file);
    log.append({ kind: 'worker.launched', target: 'worker:a', data: { i: 3 } });
    expect(seqs()).toEqual([4]);
    // logrotate's copytruncate: cut to nothing in place.
    fs.truncateSync(file, 0);
    log.append({ kind: 'worker.launched', target: 'worker:a', data: { i: 4 } });
    expect(seqs()).toEqual([5]);
    // logrotate's "create": the file is moved away; the writer notices the
    // path no longer names its file and starts a new one with the next event.
    fs.renameSync(file, `${file}.1`);
    await waitFor(
      'a new file after rotation',
      () => {
        log.append({ kind: 'worker.launched', target: 'worker:a' });
        return fs.existsSync(file);
      },
      10_000,
      50,
    );
    const n = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    // Every event from 5 on is in one of the two files, once, in order.
    expect([...seqs(`${file}.1`), ...seqs()]).toEqual(Array.from({ length: n - 4 }, (_, i) => i + 5));
    log.close();
    db.close();
  });

  it('rotates itself past its size cap, keeping one old file, and every line is in one of them once', () => {
    const dir = tmpDir();
    const db = openDb(dir);
    const file = path.join(dir, PROJECTION_FILE);
    // Two writers, as two daemons: whichever crosses the cap rotates, the other follows.
    const a = new SqliteEventLog(db, {
      source: 'worker-sentry',
      runId: () => 'r-1',
      projection: { file, maxBytes: 4096 },
    });
    const other = openDb(dir);
    const b = new SqliteEventLog(other, {
      source: 'watchdog',
      runId: () => 'r-1',
      projection: { file, maxBytes: 4096 },
    });
    for (let i = 0; i < 120; i++) (i % 2 ? a : b).append({ kind: 'worker.launched', target: 'worker:a', data: { i } });
    const seqs = (f: string) =>
      fs
        .readFileSync(f, 'utf8')
        .trimEnd()
        .split('\n')
        .filter(Boolean)
        .map((l) => Number(/seq=(\d+)$/.exec(l)?.[1]));
    const current = seqs(file);
    const previous = seqs(`${file}.1`);
    expect(fs.statSync(file).size).toBeLessThan(4096 + 1024);
    expect(fs.statSync(`${file}.1`).size).toBeLessThan(4096 + 1024);
    expect([...previous, ...current]).toEqual(
      Array.from(
        { length: previous.length + current.length },
        (_, i) => 120 - previous.length - current.length + i + 1,
      ),
    );
    expect(current.at(-1)).toBe(120);
    a.close();
    b.close();
    other.close();
    db.close();
  });

  it('an append waits out a lock another process holds briefly', async () => {
    const dir = tmpDir();
    const { db, log } = openLog(dir);
    log.append({ kind: 'worker.launched', target: 'worker:a' });
    const locker = spawn(
      process.execPath,
      [path.join(__dirname, 'corpus', 'locker.js'), path.join(dir, 'swarm.db'), '300'],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    locker.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor('lock held', () => out.includes('locked'), 10_000, 10);
    const e = log.append({ kind: 'worker.exited', target: 'worker:a' });
    expect(e.seq).toBe(2);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(10_000);
    expect(verifyChain(db)).toMatchObject({ ok: true, count: 2 });
    locker.stdin.end();
    db.close();
  });

  it('formats lines for tail -f as CONTRACT shows', () => {
    const line = formatEventLine({
      ts: '2026-11-23T08:00:01.234Z',
      severity: 'warn',
      source: 'worker-sentry',
      kind: 'detect.progress_stale',
      target: 'worker:optimizer-SOL',
      data: { message: 'no progress for 31s (limit 30s)' },
      seq: 123,
    });
    expect(line).toBe(
      '2026-11-23T08:00:01.234Z WARN  worker-sentry  detect.progress_stale  worker:optimizer-SOL  no progress for 31s (limit 30s)  seq=123\n',
    );
  });

  it('6 processes x 10,000 events: none lost, chain intact, projection gap-free', async () => {
    const dir = tmpDir();
    openDb(dir).close();
    const writers = Array.from(
      { length: 6 },
      (_, i) =>
        new Promise<number>((resolve, reject) => {
          const p = spawn(
            process.execPath,
            ['--import', 'tsx', path.join(__dirname, 'helpers', 'append-writer.ts'), dir, '10000', `w${i}`, '1'],
            { stdio: ['ignore', 'pipe', 'inherit'] },
          );
          p.on('error', reject);
          p.on('exit', (code) => resolve(code ?? -1));
        }),
    );
    expect(await Promise.all(writers)).toEqual([0, 0, 0, 0, 0, 0]);
    const db = openDb(dir);
    expect(db.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 60_000 });
    for (let i = 0; i < 6; i++) {
      const n = db
        .prepare("SELECT count(DISTINCT json_extract(data, '$.n')) AS n FROM events WHERE target = ?")
        .get(`worker:w${i}`);
      expect(n).toEqual({ n: 10_000 });
    }
    // Each writer kept the head anchor as a daemon does: the last one written names a committed row.
    const anchor = readAnchor(dir);
    expect(anchor).toMatchObject({ seq: expect.any(Number) });
    expect((anchor as ChainHead).seq).toBeGreaterThan(59_000);
    expect(verifyChain(db, anchor as ChainHead)).toMatchObject({ ok: true, count: 60_000, lastSeq: 60_000 });
    const seqs = fs
      .readFileSync(path.join(dir, PROJECTION_FILE), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => Number(/seq=(\d+)$/.exec(l)?.[1]));
    expect(seqs).toHaveLength(60_000);
    expect(seqs.every((s, i) => s === i + 1)).toBe(true);
    db.close();
  }, 180_000);

  it("a row's hash is pinned: logs written before a change to hashRow still verify", () => {
    // Computed with the first implementation (createHash over the fields joined by newlines).
    const row = {
      seq: 1,
      ts: '2026-12-02T00:00:00.000Z',
      run_id: 'r-1',
      source: 'watchdog',
      kind: 'daemon.started',
      target: 'daemon:watchdog',
      severity: 'info',
      action_id: null,
      data: '{"pid":42}',
    };
    expect(hashRow(GENESIS_HASH, row)).toBe('13460ec1d4d1cbd0504ff308b7d6fe1a053e4dfb84a32e256d8e5432abb09011');
    expect(
      hashRow(GENESIS_HASH, { ...row, seq: 2, kind: 'action.started', severity: 'warn', action_id: 7, data: '{}' }),
    ).toBe('673283560251cc2a1b3db7af869e9947f8ebff4b7dffc746c7a7f86a1ba26edb');
  });

  it('data that cannot be serialized is an EventLogError naming the kind, and appends nothing', () => {
    const dir = tmpDir();
    const { db, log } = openLog(dir);
    log.append({ kind: 'worker.launched', target: 'worker:a', data: { n: 1 } });
    const cyclic: Record<string, unknown> = { n: 2 };
    cyclic.self = cyclic;
    for (const data of [cyclic, { big: 10n }])
      expect(() => log.append({ kind: 'worker.exited', target: 'worker:a', data })).toThrow(
        expect.objectContaining({ name: 'EventLogError', message: expect.stringContaining('(worker.exited)') }),
      );
    log.append({ kind: 'worker.exited', target: 'worker:a', data: { code: 0 } });
    expect(readEvents(db).map((e) => e.kind)).toEqual(['worker.launched', 'worker.exited']);
    expect(verifyChain(db)).toMatchObject({ ok: true, count: 2 });
    db.close();
  });

  it('a new swarm.db gets 1 KiB pages; one made with 4 KiB pages keeps them and still appends', () => {
    const fresh = tmpDir();
    const db = openDb(fresh);
    expect(db.pragma('page_size', { simple: true })).toBe(PAGE_BYTES);
    db.close();
    const old = tmpDir();
    const made = new Database(path.join(old, 'swarm.db'));
    made.pragma('page_size = 4096');
    made.pragma('journal_mode = WAL');
    made.exec('CREATE TABLE before_us (x INTEGER)');
    made.close();
    const reopened = openDb(old);
    expect(reopened.pragma('page_size', { simple: true })).toBe(4096);
    const log = new SqliteEventLog(reopened, { source: 'watchdog', runId: () => 'r-1' });
    log.append({ kind: 'daemon.started', target: 'daemon:watchdog' });
    expect(verifyChain(reopened)).toMatchObject({ ok: true, count: 1 });
    reopened.close();
  });
});
