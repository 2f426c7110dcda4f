import fs from 'node:fs';
import path from 'node:path';

// Readers of state files (swarmctl query, the watchdog) must never see a
// half-written file: write a temp file beside the target, fsync it, rename it
// over the target, then fsync the folder so the rename itself survives a crash.

export const STATE_DIR_MODE = 0o700;
export const STATE_FILE_MODE = 0o600;

let counter = 0;

export function ensureDir(dir: string, mode = STATE_DIR_MODE): void {
  fs.mkdirSync(dir, { recursive: true, mode });
  // mkdir's mode is masked by umask and ignored for folders that already exist.
  fs.chmodSync(dir, mode);
}

/** `beforeRename` runs after the new content is durable and just before it replaces the old file. */
export function writeFileAtomic(file: string, content: string | Buffer, mode = STATE_FILE_MODE, beforeRename?: () => void): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${counter++}.tmp`);
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    beforeRename?.();
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
}

export function writeJsonAtomic(file: string, value: unknown, beforeRename?: () => void): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, STATE_FILE_MODE, beforeRename);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Appends one line with O_APPEND, so concurrent appenders never interleave within a line. */
export function appendLine(file: string, line: string, mode = STATE_FILE_MODE): void {
  fs.appendFileSync(file, line.endsWith('\n') ? line : `${line}\n`, { mode });
}
