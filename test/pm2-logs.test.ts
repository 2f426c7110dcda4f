import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { boundPm2Logs } from '../lib/watchdog/pm2-logs';
import { tmpDir } from './helpers/tmp';

// PM2's own logs stay bounded: a daemon's past the cap is cut back with its
// newest quarter kept, a deleted worker's logs go. Real files; an open
// O_APPEND writer, as PM2's, goes on writing at the new end.

describe("PM2's logs", () => {
  it('cuts a daemon log past the cap, keeps its newest quarter in .1, and PM2 writes on at the new end', () => {
    const home = tmpDir();
    const logs = path.join(home, 'logs');
    fs.mkdirSync(logs);
    const out = path.join(logs, 'watchdog-out.log');
    const lines = Array.from({ length: 2000 }, (_, i) => `line ${String(i).padStart(5, '0')} ${'x'.repeat(40)}\n`).join(
      '',
    );
    fs.writeFileSync(out, lines);
    const writer = fs.openSync(out, 'a');
    fs.writeFileSync(path.join(logs, 'watchdog-error.log'), 'small\n');
    const r = boundPm2Logs(home, ['watchdog'], ['watchdog'], 40_000);
    expect(r.trimmed).toEqual([{ file: out, bytes: lines.length }]);
    expect(fs.statSync(out).size).toBe(0);
    const kept = fs.readFileSync(`${out}.1`, 'utf8');
    expect(kept.length).toBe(10_000);
    expect(kept.endsWith('line 01999 ' + 'x'.repeat(40) + '\n')).toBe(true);
    expect(fs.readFileSync(path.join(logs, 'watchdog-error.log'), 'utf8')).toBe('small\n');
    fs.writeSync(writer, 'after the cut\n');
    fs.closeSync(writer);
    expect(fs.readFileSync(out, 'utf8')).toBe('after the cut\n');
  });

  it("removes the logs of workers PM2 no longer has, and no one else's", () => {
    const home = tmpDir();
    const logs = path.join(home, 'logs');
    fs.mkdirSync(logs);
    for (const f of [
      'swarm-worker-gone-1-out.log',
      'swarm-worker-gone-1-error.log',
      'swarm-worker-live-0-out.log',
      'other-app-out.log',
    ])
      fs.writeFileSync(path.join(logs, f), 'x\n');
    const r = boundPm2Logs(home, [], ['swarm-worker-live-0', 'other-app'], 1 << 20);
    expect(r.removed.sort()).toEqual(['swarm-worker-gone-1-error.log', 'swarm-worker-gone-1-out.log']);
    expect(fs.readdirSync(logs).sort()).toEqual(['other-app-out.log', 'swarm-worker-live-0-out.log']);
  });
});
