import fs from 'node:fs';
import os from 'node:os';

// Machine CPU and memory for util-controller, read straight from /proc.
// systeminformation, used before, ran `cat /proc/stat | grep cpu` through a
// shell on every call: a shell per tick, against the rule that nothing runs
// through one, and most of util-controller's idle CPU.

export interface CpuTimes {
  busy: number;
  total: number;
}

/** Parses the aggregate "cpu" line of /proc/stat; null if it is not there. */
export function parseProcStat(text: string): CpuTimes | null {
  const line = text.split('\n', 1)[0] ?? '';
  const m = /^cpu\s+(.*)$/.exec(line);
  if (!m || m[1] === undefined) return null;
  // user nice system idle iowait irq softirq steal [guest guest_nice]:
  // guest time is already counted in user, so only the first eight add up.
  const f = m[1].trim().split(/\s+/).slice(0, 8).map(Number);
  if (f.length < 4 || f.some((x) => !Number.isFinite(x))) return null;
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

function cpuTimes(): CpuTimes | null {
  try {
    return parseProcStat(fs.readFileSync('/proc/stat', 'utf8'));
  } catch {
    // No /proc (not Linux): the same counters through libuv.
    let busy = 0;
    let total = 0;
    for (const c of os.cpus()) {
      const t = c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
      total += t;
      busy += t - c.times.idle;
    }
    return total > 0 ? { busy, total } : null;
  }
}

/** CPU use in % of the whole machine since the previous call (the first call: since the meter was made). */
export class CpuLoadMeter {
  private last: CpuTimes | null = cpuTimes();

  sample(): number | null {
    const now = cpuTimes();
    const prev = this.last;
    this.last = now;
    if (!now || !prev || now.total <= prev.total) return null;
    return Math.round(((now.busy - prev.busy) / (now.total - prev.total)) * 1000) / 10;
  }
}

/** Parses /proc/meminfo's MemTotal and MemAvailable, in bytes. */
export function parseMemInfo(text: string): { totalBytes: number; availableBytes: number } | null {
  const kb = (name: string): number | null => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const totalBytes = kb('MemTotal');
  const availableBytes = kb('MemAvailable');
  return totalBytes && availableBytes !== null ? { totalBytes, availableBytes } : null;
}

/** Memory in use, in % of the machine: what is not available to new work. */
export function memoryUsedPct(): number {
  let info: { totalBytes: number; availableBytes: number } | null = null;
  try {
    info = parseMemInfo(fs.readFileSync('/proc/meminfo', 'utf8'));
  } catch {
    // No /proc: libuv's figure, which is MemAvailable where there is one.
  }
  info ??= { totalBytes: os.totalmem(), availableBytes: os.freemem() };
  return Math.round((1 - info.availableBytes / info.totalBytes) * 1000) / 10;
}
