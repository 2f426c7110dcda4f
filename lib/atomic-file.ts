import fs from 'node:fs';
import path from 'node:path';
import { appendRegular } from './safe-file';

// Readers of state files (swarmctl query, the watchdog) must never see a
// half-written file: write a temp file beside the target and rename it over
// the target. A durable write also fsyncs the file and then the folder, so
// the new content survives a power cut; see WriteOptions.durable for which
// writes skip that.

export const STATE_DIR_MODE = 0o700;
export const STATE_FILE_MODE = 0o600;

let counter = 0;

export function ensureDir(dir: string, mode = STATE_DIR_MODE): void {
  fs.mkdirSync(dir, { recursive: true, mode });
  // mkdir's mode is masked by umask and ignored for folders that already exist.
  fs.chmodSync(dir, mode);
}

export interface WriteOptions {
  mode?: number;
  /** Runs after the new content is written and just before it replaces the old file. */
  beforeRename?: () => void;
  /**
   * fsync the file and the folder (default true). The state files every
   * daemon rewrites each tick are not durable: they are views rebuilt from
   * the event log, a power cut that leaves one stale or empty is repaired
   * like any corrupt state file, and their fsyncs were most of a daemon's
   * idle CPU (docs/PERFORMANCE.md).
   */
  durable?: boolean;
}

/** write(2) may write less than asked near a full disk; the rest is written, or its error thrown, never dropped. */
function writeAll(fd: number, buf: Buffer): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done);
}

export function writeFileAtomic(file: string, content: string | Buffer, opts: WriteOptions = {}): void {
  const durable = opts.durable ?? true;
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${counter++}.tmp`);
  const fd = fs.openSync(
    tmp,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW,
    opts.mode ?? STATE_FILE_MODE,
  );
  try {
    writeAll(fd, typeof content === 'string' ? Buffer.from(content) : content);
    if (durable) fs.fsyncSync(fd);
  } catch (err) {
    // ENOSPC and the like: no half-written temp file is left behind, tick after tick.
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    opts.beforeRename?.();
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  if (durable) fsyncDir(dir);
}

export function writeJsonAtomic(file: string, value: unknown, opts: WriteOptions = {}): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, opts);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Appends one line with O_APPEND, so concurrent appenders never interleave within a line; never through a planted link. */
export function appendLine(file: string, line: string, mode = STATE_FILE_MODE): void {
  appendRegular(file, line.endsWith('\n') ? line : `${line}\n`, mode);
}
