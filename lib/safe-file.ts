import fs from 'node:fs';
import { UnsafeFileError } from './errors';

// Files in the state folder are reachable by workers (a checkpoint folder's
// ../.. is the state folder), so a daemon opens them as it would a file an
// attacker planted: never through a symlink (O_NOFOLLOW), never blocking on
// a FIFO (O_NONBLOCK, then the type is checked), only a regular file, and
// never reading more than a cap.

const O = fs.constants;
export const STATE_READ_LIMIT = 64 * 1024 * 1024;

/** `flags` plus O_NOFOLLOW and O_NONBLOCK; throws UnsafeFileError for anything but a regular file. ENOENT is left as it is. */
export function openRegular(file: string, flags: number, mode = 0o600): number {
  let fd: number;
  try {
    fd = fs.openSync(file, flags | O.O_NOFOLLOW | O.O_NONBLOCK, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ELOOP: the last part is a symlink; ENXIO: a FIFO with no reader, opened to write.
    if (code === 'ELOOP' || code === 'ENXIO')
      throw new UnsafeFileError(file, code === 'ELOOP' ? 'a symlink' : 'a FIFO');
    throw err;
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new UnsafeFileError(file, st.isFIFO() ? 'a FIFO' : st.isDirectory() ? 'a folder' : 'not a regular file');
  }
  return fd;
}

/** The file's text, or null when it does not exist. Over `maxBytes` it is refused, not read. */
export function readRegular(file: string, maxBytes = STATE_READ_LIMIT): string | null {
  // Most files asked for each tick are not there (no exit yet): say so without building an error to catch.
  if (fs.lstatSync(file, { throwIfNoEntry: false }) === undefined) return null;
  let fd: number;
  try {
    fd = openRegular(file, O.O_RDONLY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size > maxBytes) throw new UnsafeFileError(file, `${size} bytes, over the ${maxBytes}-byte cap`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Appends to a regular file, made with `mode` if missing. All of `text` or
 * none of it: near a full disk write(2) may stop part-way, and the part
 * written is cut off again, so a line-per-record file never holds a torn
 * line. (Made for files with one writer; a second appender's bytes written
 * meanwhile would be cut with it.)
 */
export function appendRegular(file: string, text: string, mode = 0o600): void {
  const fd = openRegular(file, O.O_WRONLY | O.O_APPEND | O.O_CREAT, mode);
  const buf = Buffer.from(text);
  const before = fs.fstatSync(fd).size;
  try {
    for (let done = 0; done < buf.length;) done += fs.writeSync(fd, buf, done, buf.length - done);
  } catch (err) {
    try {
      fs.ftruncateSync(fd, before);
    } catch (cut) {
      throw new AggregateError([err, cut], `${file}: a part-written append could not be cut off`);
    }
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/** Opens for appending, for a writer that keeps the descriptor. */
export function openAppend(file: string, mode = 0o600): number {
  return openRegular(file, O.O_WRONLY | O.O_APPEND | O.O_CREAT, mode);
}

/** Size of a regular file (not followed through a link), or null. */
export function regularSize(file: string): number | null {
  try {
    const st = fs.lstatSync(file);
    return st.isFile() ? st.size : null;
  } catch {
    // Missing: no size.
    return null;
  }
}
