import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file';
import { regularSize } from '../safe-file';

// PM2 appends each daemon's output to PM2_HOME/logs/NAME-out.log and
// NAME-error.log for ever, and leaves a deleted app's logs behind. The
// watchdog keeps them bounded the way logrotate's copytruncate does: past
// the cap, the newest quarter is kept in NAME-out.log.1 and the file is cut
// to nothing (PM2 writes with O_APPEND, so it goes on at the new end). Lines
// written between the copy and the cut are lost, as with copytruncate.
// Logs of swarm-worker apps PM2 no longer has are removed.

export interface LogTrim {
  file: string;
  bytes: number;
}

function trim(file: string, maxBytes: number): LogTrim | null {
  const size = regularSize(file);
  if (size === null || size <= maxBytes) return null;
  const keep = Math.floor(maxBytes / 4);
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(keep);
    const n = fs.readSync(fd, buf, 0, keep, Math.max(0, size - keep));
    writeFileAtomic(`${file}.1`, buf.subarray(0, n), { durable: false });
    fs.ftruncateSync(fd, 0);
  } finally {
    fs.closeSync(fd);
  }
  return { file, bytes: size };
}

/** Trims the daemons' logs past `maxBytes`; removes the logs of workers PM2 no longer runs. */
export function boundPm2Logs(
  pm2Home: string,
  daemons: readonly string[],
  liveApps: readonly string[],
  maxBytes: number,
): { trimmed: LogTrim[]; removed: string[] } {
  const dir = path.join(pm2Home, 'logs');
  const trimmed: LogTrim[] = [];
  for (const name of daemons) {
    for (const kind of ['out', 'error']) {
      const t = trim(path.join(dir, `${name}-${kind}.log`), maxBytes);
      if (t) trimmed.push(t);
    }
  }
  const removed: string[] = [];
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    // No logs folder yet.
    return { trimmed, removed };
  }
  for (const f of entries) {
    const m = /^(swarm-worker-.+)-(out|error)\.log(\.1)?$/.exec(f);
    if (m && !liveApps.includes(m[1] as string)) {
      fs.rmSync(path.join(dir, f), { force: true });
      removed.push(f);
    }
  }
  return { trimmed, removed };
}
