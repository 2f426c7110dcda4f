import fs from 'node:fs';
import { openRegular, regularSize } from '../safe-file';

// Cheap per-tick observations of a worker: is its progress file advancing,
// is its log growing, has the startup marker appeared, do its artifacts exist.
// Every read is bounded, so a huge or garbage file costs the same as a small one.

const PROGRESS_READ_LIMIT = 64 * 1024;

export interface ProgressReading {
  /** Changes whenever the worker makes progress: updatedAt if the JSON has it, else the mtime. */
  marker: string;
  mtimeMs: number;
  json: Record<string, unknown> | null;
}

/** A regular file opened without following a link or waiting on a FIFO, or null: what a worker left there is no progress. */
function openWorkerFile(file: string): number | null {
  // A worker that writes no progress file is asked each tick: no error built and caught for it.
  if (fs.lstatSync(file, { throwIfNoEntry: false }) === undefined) return null;
  try {
    return openRegular(file, fs.constants.O_RDONLY);
  } catch {
    // Missing, a symlink, a FIFO: nothing to read.
    return null;
  }
}

export function readProgress(file: string): ProgressReading | null {
  const fd = openWorkerFile(file);
  if (fd === null) return null;
  let st: fs.Stats;
  let json: Record<string, unknown> | null = null;
  try {
    st = fs.fstatSync(fd);
    if (st.size > 0 && st.size <= PROGRESS_READ_LIMIT) {
      try {
        const parsed: unknown = JSON.parse(fs.readFileSync(fd, 'utf8'));
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
      } catch {
        // Garbage or half-written by a worker that does not write atomically: the mtime still counts.
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  const updatedAt =
    json && (typeof json.updatedAt === 'string' || typeof json.updatedAt === 'number') ? String(json.updatedAt) : null;
  return { marker: updatedAt ? `u:${updatedAt}` : `m:${st.mtimeMs}`, mtimeMs: st.mtimeMs, json };
}

export function fileSize(file: string): number | null {
  return regularSize(file);
}

/** The last `bytes` of a file as text. */
export function readTail(file: string, bytes = 16 * 1024): string {
  const fd = openWorkerFile(file);
  if (fd === null) return '';
  try {
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, bytes);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

const SCAN_LIMIT = 1024 * 1024;

/**
 * Looks for `marker` in the bytes appended since `offset`. Returns the new
 * offset; a marker split across two reads is still found because the scan
 * starts marker.length bytes back.
 */
export function scanForMarker(file: string, offset: number, marker: string): { found: boolean; offset: number } {
  const size = fileSize(file);
  if (size === null || size <= offset) return { found: false, offset: size === null ? offset : Math.min(offset, size) };
  const overlap = Buffer.byteLength(marker);
  const start = Math.max(0, Math.max(offset - overlap, size - SCAN_LIMIT));
  const fd = openWorkerFile(file);
  if (fd === null) return { found: false, offset };
  try {
    const buf = Buffer.alloc(size - start);
    fs.readSync(fd, buf, 0, buf.length, start);
    return { found: buf.includes(marker), offset: size };
  } finally {
    fs.closeSync(fd);
  }
}

export function exists(file: string): boolean {
  try {
    fs.accessSync(file);
    return true;
  } catch {
    return false;
  }
}
