import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { openDb } from '../lib/db';
import { EventLogError } from '../lib/errors';
import { SqliteEventLog, verifyChain } from '../lib/event-log';
import { parseNvidiaSmiXml, probeGpus } from '../lib/nvidia-smi';
import { classifyExit } from '../lib/sentry/classify';
import { readProgress, readTail, scanForMarker } from '../lib/worker/read';
import { findOverrun } from '../lib/hang-guard/hang-guard';
import { newWorkerRecord } from '../lib/worker/record';
import { ROOT, SWARMCTL } from './helpers/swarm';
import { tmpDir, waitFor } from './helpers/tmp';

// The bad-input corpus (test/corpus/): for every input, nothing crashes, the
// error says what is wrong, and nothing is lost.

const CORPUS = path.join(ROOT, 'test', 'corpus');

describe('bad configs', () => {
  const expected = JSON.parse(fs.readFileSync(path.join(CORPUS, 'configs', 'expect.json'), 'utf8')) as Record<
    string,
    { path: string; match: string }
  >;
  for (const [file, want] of Object.entries(expected)) {
    it(`${file}: exit 2, naming the file, ${want.path || 'the document'} and what was expected`, () => {
      const full = path.join(CORPUS, 'configs', file);
      const r = spawnSync(SWARMCTL, ['query', '--json', '--config', full], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(full);
      if (want.path) expect(r.stderr).toContain(`${want.path}:`);
      expect(r.stderr).toMatch(new RegExp(want.match));
    });
  }
});

describe('bad progress files', () => {
  const dir = tmpDir();
  const inputs: Record<string, () => string> = {
    ...Object.fromEntries(
      fs.readdirSync(path.join(CORPUS, 'progress')).map((f) => [f, () => path.join(CORPUS, 'progress', f)]),
    ),
    'huge (20 MiB)': () => {
      const f = path.join(dir, 'huge.json');
      fs.writeFileSync(f, `{"updatedAt": "x", "pad": "${'x'.repeat(20 * 1024 * 1024)}"}`);
      return f;
    },
    missing: () => path.join(dir, 'nope.json'),
  };
  for (const [name, make] of Object.entries(inputs)) {
    it(`${name}: read without a crash; the mtime still counts as progress`, () => {
      const file = make();
      const r = readProgress(file);
      if (name === 'missing') return expect(r).toBeNull();
      expect(r?.marker).toMatch(/^(m|u):/);
      const w = {
        ...newWorkerRecord({ id: 'w', job: 'j', taskId: 't', slot: null, lane: 'cpu' }),
        launchedAt: Date.now(),
      };
      expect(() => findOverrun(w, null, r?.json ?? null, Date.now())).not.toThrow();
    });
  }
});

describe('bad nvidia-smi output', () => {
  for (const f of fs.readdirSync(path.join(CORPUS, 'nvidia-smi'))) {
    it(`${f}: a clear parse error, never a crash`, () => {
      expect(() => parseNvidiaSmiXml(fs.readFileSync(path.join(CORPUS, 'nvidia-smi', f), 'utf8'))).toThrow(
        /not XML|no <nvidia_smi_log>|no <gpu>/,
      );
    });
  }

  it('slow: a reader that hangs is cut off at the timeout with a reason', async () => {
    const dir = tmpDir();
    const bin = path.join(dir, 'nvidia-smi');
    fs.writeFileSync(
      bin,
      `#!${process.execPath}\nsetTimeout(() => process.stdout.write('<nvidia_smi_log/>'), 60000);\n`,
      { mode: 0o755 },
    );
    const t = Date.now();
    const r = await probeGpus({ bin, timeoutMs: 300 });
    expect(r).toMatchObject({ available: false, reason: expect.stringMatching(/did not answer within 300ms/) });
    expect(Date.now() - t).toBeLessThan(5000);
  });
});

describe('huge log lines', () => {
  it('a 10 MiB line: the tail, the marker scan and the classifier stay bounded', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'output.log');
    fs.writeFileSync(file, `${'y'.repeat(10 * 1024 * 1024)}\nModuleNotFoundError: No module named 'x'\n`);
    const tail = readTail(file);
    expect(tail.length).toBeLessThanOrEqual(16 * 1024);
    expect(
      classifyExit([], {
        exitCode: 1,
        signal: null,
        logTail: tail,
        lastRssBytes: null,
        memoryLimitBytes: null,
        kernelOomKilled: false,
      }).class,
    ).toBe('deterministic_failure');
    expect(scanForMarker(file, 0, 'No module named').found).toBe(true);
  });
});

describe('hostile names and arguments', () => {
  it('arguments with shell metacharacters, ../ and unicode reach the worker verbatim: nothing runs through a shell', async () => {
    const dir = tmpDir();
    const hostile = [
      '; rm -rf / #',
      '$(id)',
      '`whoami`',
      '../../etc/passwd',
      '"quoted" \'single\'',
      'naïve → ✓ 日本',
      '&& echo pwned',
      '|cat',
      '>out',
    ];
    const spec = {
      command: [process.execPath, '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', ...hostile],
      cwd: dir,
      env: { PATH: process.env.PATH ?? '' },
      dir,
      stopGraceMs: 1000,
    };
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    const p = spawn(process.execPath, [path.join(ROOT, 'lib', 'worker-shim.js'), path.join(dir, 'spec.json')], {
      stdio: 'ignore',
    });
    await new Promise((resolve) => p.on('exit', resolve));
    const out = fs.readFileSync(path.join(dir, 'output.log'), 'utf8').trim();
    expect(JSON.parse(out)).toEqual(hostile);
    expect(fs.existsSync(path.join(dir, 'out'))).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'exit.json'), 'utf8'))).toMatchObject({
      exitCode: 0,
      signal: null,
    });
  });

  it('a hostile task id is refused with the reason', () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'c.json');
    fs.writeFileSync(cfg, JSON.stringify({ name: 'h', stateDir: 'state', jobs: { j: { command: ['true'] } } }));
    for (const id of ['../escape', 'a b', '$(id)', 'x/y']) {
      const r = spawnSync(SWARMCTL, ['submit', 'j', '--id', id, '--config', cfg], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/--id/);
    }
  });
});

describe('a locked or read-only database', () => {
  it('locked: the append fails with a clear error; once the lock goes, appends resume and nothing is lost', async () => {
    const dir = tmpDir();
    const db = openDb(dir, { busyTimeoutMs: 200 });
    const log = new SqliteEventLog(db, { source: 'worker-sentry', runId: () => 'r' });
    for (let i = 0; i < 5; i++) log.append({ kind: 'worker.launched', target: 'worker:a', data: { i } });
    const locker = spawn(process.execPath, [path.join(CORPUS, 'locker.js'), path.join(dir, 'swarm.db')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    locker.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor('lock held', () => out.includes('locked'));
    let err: unknown;
    try {
      log.append({ kind: 'worker.launched', target: 'worker:a', data: { i: 5 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EventLogError);
    expect(String((err as Error).message)).toMatch(
      /cannot append 1 event\(s\) \(worker.launched\): database is locked/,
    );
    locker.stdin.end();
    await new Promise((resolve) => locker.on('exit', resolve));
    log.append({ kind: 'worker.launched', target: 'worker:a', data: { i: 5 } });
    expect(db.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 6 });
    expect(verifyChain(db)).toMatchObject({ ok: true, count: 6 });
    db.close();
  });

  it('read-only: writing fails with a clear error, reading still works', () => {
    const dir = tmpDir();
    const rw = openDb(dir);
    new SqliteEventLog(rw, { source: 'worker-sentry', runId: () => 'r' }).append({
      kind: 'worker.launched',
      target: 'worker:a',
    });
    rw.close();
    const ro = openDb(dir, { readonly: true });
    const log = new SqliteEventLog(ro, { source: 'worker-sentry', runId: () => 'r' });
    expect(() => log.append({ kind: 'worker.launched', target: 'worker:a' })).toThrow(/cannot append .*readonly/);
    expect(verifyChain(ro)).toMatchObject({ ok: true, count: 1 });
    ro.close();
  });
});
