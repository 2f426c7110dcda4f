import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeJsonAtomic } from '../lib/atomic-file';
import { daemonView } from '../lib/snapshot';
import { DAEMON_STATE_FILES } from '../lib/state-files';
import { tmpDir } from './helpers/tmp';

// A daemon's header is read from its state file once per version of the file:
// a file rewritten, replaced or spoiled in place is read again.

function header(restarts: number, pad = '') {
  return {
    daemon: 'worker-sentry',
    pid: process.pid,
    runId: 'r1',
    lifecycle: 'running',
    startedAt: new Date().toISOString(),
    lastTickAt: new Date().toISOString(),
    tickMs: 1000,
    ticks: 3,
    restarts,
    pad,
  };
}

describe('daemonView', () => {
  it('follows every new version of the state file, and an edit in place', () => {
    const dir = tmpDir();
    const file = path.join(dir, DAEMON_STATE_FILES['worker-sentry']);
    const now = Date.now();
    expect(daemonView(dir, 'worker-sentry', now).status).toBe('missing');
    writeJsonAtomic(file, header(1));
    expect(daemonView(dir, 'worker-sentry', now)).toMatchObject({ status: 'online', restarts: 1 });
    expect(daemonView(dir, 'worker-sentry', now)).toMatchObject({ status: 'online', restarts: 1 });
    // Same size, new content, by rename (as the daemons write).
    writeJsonAtomic(file, header(2));
    expect(daemonView(dir, 'worker-sentry', now)).toMatchObject({ status: 'online', restarts: 2 });
    // Spoiled in place, at the same size.
    const size = fs.statSync(file).size;
    fs.writeFileSync(file, 'x'.repeat(size));
    expect(daemonView(dir, 'worker-sentry', now).status).toBe('missing');
    writeJsonAtomic(file, header(3, 'longer'));
    expect(daemonView(dir, 'worker-sentry', now)).toMatchObject({ status: 'online', restarts: 3 });
    fs.rmSync(file);
    expect(daemonView(dir, 'worker-sentry', now).status).toBe('missing');
  });
});
