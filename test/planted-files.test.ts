import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { appendLine } from '../lib/atomic-file';
import { openDb } from '../lib/db';
import { UnsafeFileError } from '../lib/errors';
import { readStateFile } from '../lib/state-store';
import { readTail, scanForMarker } from '../lib/worker/read';
import { readExit } from '../lib/worker/files';
import { ROOT } from './helpers/swarm';
import { tmpDir } from './helpers/tmp';

// What a worker can plant in the state folder (it reaches it from its
// checkpoint folder): symlinks to files it wants written, FIFOs that would
// block a reader for good, a swarm.db left 0644. Real files, real FIFOs.

function fifo(file: string): void {
  const r = spawnSync('mkfifo', [file]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
}

describe('planted files in the state folder', () => {
  it('a FIFO at exit.json or output.log is refused at once, never waited on', () => {
    const dir = tmpDir();
    fifo(path.join(dir, 'exit.json'));
    fifo(path.join(dir, 'output.log'));
    const started = Date.now();
    expect(readExit(dir)).toBeNull();
    const r = readStateFile(path.join(dir, 'exit.json'), z.object({}));
    expect(r.ok ? null : r.error.message).toMatch(/a FIFO/);
    expect(readTail(path.join(dir, 'output.log'))).toBe('');
    // scanForMarker sizes with lstat: a FIFO has no size, so nothing is read.
    expect(scanForMarker(path.join(dir, 'output.log'), 0, 'ready')).toMatchObject({ found: false });
    // Any blocking open would have hung this test until its timeout.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a symlink in place of a state file or an appended log is never followed', () => {
    const dir = tmpDir();
    const victim = path.join(tmpDir(), 'victim.txt');
    fs.writeFileSync(victim, 'precious\n');
    fs.symlinkSync(victim, path.join(dir, 'workflow_events.log'));
    expect(() => appendLine(path.join(dir, 'workflow_events.log'), 'x')).toThrow(UnsafeFileError);
    fs.symlinkSync(victim, path.join(dir, 'watchdog_state.json'));
    const r = readStateFile(path.join(dir, 'watchdog_state.json'), z.object({}));
    expect(r.ok ? null : r.error.message).toMatch(/a symlink/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
  });

  it('a swarm.db left 0644 is made 0600 on open; one planted as a symlink is refused', () => {
    const dir = tmpDir();
    openDb(dir).close();
    fs.chmodSync(path.join(dir, 'swarm.db'), 0o644);
    openDb(dir).close();
    expect(fs.statSync(path.join(dir, 'swarm.db')).mode & 0o777).toBe(0o600);
    const other = tmpDir();
    fs.symlinkSync(path.join(dir, 'swarm.db'), path.join(other, 'swarm.db'));
    expect(() => openDb(other)).toThrow(/swarm\.db: refused: a symlink/);
  });

  it('a write that fails for want of space leaves no temp file behind', () => {
    const dir = tmpDir();
    // RLIMIT_FSIZE makes the write fail (EFBIG) as a full disk would (ENOSPC), on the same path.
    const code = `const { writeFileAtomic } = require(${JSON.stringify(path.join(ROOT, 'lib', 'atomic-file.ts'))});
      try { writeFileAtomic(${JSON.stringify(path.join(dir, 'state.json'))}, Buffer.alloc(64 * 1024)); process.stdout.write('written'); }
      catch (e) { process.stdout.write(e.code); }`;
    const r = spawnSync('prlimit', ['--fsize=4096', process.execPath, '--import', 'tsx', '-e', code], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.stdout).toBe('EFBIG');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
