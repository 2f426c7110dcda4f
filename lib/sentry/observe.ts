import fs from 'node:fs';

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

export function readProgress(file: string): ProgressReading | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return null;
  }
  let json: Record<string, unknown> | null = null;
  if (st.size > 0 && st.size <= PROGRESS_READ_LIMIT) {
    try {
      const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
    } catch {
      // Garbage or half-written by a worker that does not write atomically: the mtime still counts.
    }
  }
  const updatedAt = json && (typeof json.updatedAt === 'string' || typeof json.updatedAt === 'number') ? String(json.updatedAt) : null;
  return { marker: updatedAt ? `u:${updatedAt}` : `m:${st.mtimeMs}`, mtimeMs: st.mtimeMs, json };
}

export function fileSize(file: string): number | null {
  try {
    return fs.statSync(file).size;
  } catch {
    return null;
  }
}

/** The last `bytes` of a file as text. */
export function readTail(file: string, bytes = 16 * 1024): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return '';
  }
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
  const fd = fs.openSync(file, 'r');
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
