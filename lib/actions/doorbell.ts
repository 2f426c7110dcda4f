import fs from 'node:fs';
import path from 'node:path';
import { STATE_FILE_MODE } from '../atomic-file';
import { openRegular } from '../safe-file';

// The doorbell between proposers and orchestrator-consensus. A proposer
// rings it after inserting a proposal; consensus watches it and decides at
// once. Without it consensus had to poll the proposals table 20 times a
// second to answer quickly, which was most of its idle CPU; now it polls
// four times a second only as a fallback for a ring the watch missed.

export const DOORBELL_FILE = '.consensus-doorbell';

export const doorbellPath = (stateDir: string): string => path.join(stateDir, DOORBELL_FILE);

/** A failure here is the state folder's, and the proposal's insert into it failed first. */
export function ringDoorbell(stateDir: string): void {
  const fd = openRegular(
    doorbellPath(stateDir),
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC,
    STATE_FILE_MODE,
  );
  try {
    fs.writeSync(fd, `${Date.now()}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Watches the doorbell: `onRing` runs on every ring, `onGone` once the file
 * is removed or replaced (the watch then hears nothing more). Returns the
 * watcher, or the reason it cannot watch.
 */
export function watchDoorbell(
  stateDir: string,
  onRing: () => void,
  onGone: () => void = () => {},
): { watcher: fs.FSWatcher } | { error: Error } {
  const file = doorbellPath(stateDir);
  try {
    fs.closeSync(openRegular(file, fs.constants.O_WRONLY | fs.constants.O_CREAT, STATE_FILE_MODE));
    const watcher = fs.watch(file, (event) => (event === 'rename' ? onGone() : onRing()));
    return { watcher };
  } catch (err) {
    return { error: err as Error };
  }
}
