import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CpuLoadMeter, memoryUsedPct, parseMemInfo, parseProcStat } from '../lib/machine-load';
import { TreeUsageSampler, processTree } from '../lib/proc';
import { waitFor } from './helpers/tmp';

describe('machine load from /proc', () => {
  it('parses the aggregate cpu line; guest time is not counted twice', () => {
    expect(parseProcStat('cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 1 2 3 4\n')).toEqual({ busy: 160, total: 1000 });
    expect(parseProcStat('intr 1 2 3\n')).toBeNull();
    expect(parseProcStat('cpu  a b c d\n')).toBeNull();
  });

  it('parses MemTotal and MemAvailable', () => {
    expect(parseMemInfo('MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    250 kB\n')).toEqual({
      totalBytes: 1024000,
      availableBytes: 256000,
    });
    expect(parseMemInfo('MemTotal: 1000 kB\n')).toBeNull();
  });

  it('reads this machine: a CPU % between samples and memory in use', async () => {
    const meter = new CpuLoadMeter();
    // Burn some CPU so the kernel's counters move between the two samples.
    await waitFor(
      'cpu counters moved',
      () => {
        const end = Date.now() + 20;
        while (Date.now() < end);
        const pct = meter.sample();
        return pct !== null && pct >= 0 && pct <= 100 ? true : null;
      },
      10_000,
      10,
    );
    const mem = memoryUsedPct();
    expect(mem).toBeGreaterThan(0);
    expect(mem).toBeLessThan(100);
  });
});

describe('TreeUsageSampler', () => {
  it('counts a worker and its children, and walks again when a member is gone', async () => {
    // A parent that starts a child, then ends it when told on stdin.
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      console.log(c.pid);
      process.stdin.on('data', () => { c.kill('SIGKILL'); console.log('killed'); });
      setInterval(() => {}, 1000);
    `,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    parent.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const childPid = Number(await waitFor('child pid', () => /^\d+/.exec(out)?.[0], 10_000, 20));
      const sampler = new TreeUsageSampler(60_000);
      await waitFor('child in the tree', () => processTree(parent.pid as number).includes(childPid), 10_000, 20);
      const first = sampler.usage(parent.pid as number, 0);
      expect(first?.pids).toEqual([parent.pid, childPid]);
      expect(first?.rssBytes).toBeGreaterThan(0);
      parent.stdin.write('x');
      await waitFor(
        'child gone',
        () => out.includes('killed') && !processTree(parent.pid as number).includes(childPid),
        10_000,
        20,
      );
      // Well inside rewalkMs, but a cached member is gone: the tree is walked again.
      expect(sampler.usage(parent.pid as number, 1)?.pids).toEqual([parent.pid]);
      sampler.retain([]);
      parent.kill('SIGKILL');
      await waitFor('parent gone', () => parent.exitCode !== null || parent.signalCode !== null, 10_000, 20);
      expect(sampler.usage(parent.pid as number, 2)).toBeNull();
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
