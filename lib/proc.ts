import fs from 'node:fs';

// Process facts straight from /proc. Reading a worker and its descendants
// costs a few small reads per process in that tree, never a scan of every
// process on the machine.

export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
  cpuTicks: number;
  rssBytes: number;
  startTicks: number;
}

const PAGE_SIZE = 4096;
export const CLOCK_TICKS_PER_S = 100;

const procBuf = Buffer.alloc(4096);

/**
 * A small /proc file in one read: open, read, close. readFileSync adds an
 * fstat and a second read to find the end, and the sentry reads several of
 * these per worker each tick. Null when it is gone (the process ended).
 */
function readProcFile(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const n = fs.readSync(fd, procBuf, 0, procBuf.length, 0);
    // Longer than one buffer (a `children` file of a process with many): read the rest the slow way.
    if (n === procBuf.length) return fs.readFileSync(file, 'utf8');
    return procBuf.toString('utf8', 0, n);
  } catch {
    // The process ended between the open and the read (ESRCH).
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

export function readProcStat(pid: number): ProcStat | null {
  const text = readProcFile(`/proc/${pid}/stat`);
  // comm may hold spaces and parentheses: the fields start after the last ')'. Without one the
  // read came back empty (the process ended as it was read): gone, not a process in state ''.
  const close = text === null ? -1 : text.lastIndexOf(')');
  if (text === null || close < 0) return null;
  const f = text.slice(close + 2).split(' ');
  const num = (i: number): number => Number(f[i] ?? 0);
  return {
    pid,
    state: f[0] ?? '?',
    ppid: num(1),
    pgrp: num(2),
    cpuTicks: num(11) + num(12),
    startTicks: num(19),
    rssBytes: num(21) * PAGE_SIZE,
  };
}

/** Running, or stopped, but not a zombie: /proc says so in one read (kill(pid, 0) would also pass a zombie). */
export function isAlive(pid: number | null | undefined): boolean {
  if (!pid || pid <= 0) return false;
  return liveStat(readProcStat(pid)) !== null;
}

/** The stat of a process that still runs; null for one gone or a zombie. */
export function liveStat(st: ProcStat | null): ProcStat | null {
  return st !== null && st.state !== 'Z' && st.state !== 'X' ? st : null;
}

/** 'T' (stopped) or 't' (traced): alive but not running, as after SIGSTOP. */
export function isStopped(pid: number): boolean {
  const st = readProcStat(pid);
  return st !== null && (st.state === 'T' || st.state === 't');
}

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    // null: the thread ended between readdir and read, with nothing to count.
    for (const c of readProcFile(`/proc/${pid}/task/${tid}/children`)?.split(' ') ?? []) {
      const n = Number(c);
      if (n > 0) out.push(n);
    }
  }
  return out;
}

export function processTree(pid: number, limit = 512): number[] {
  const seen: number[] = [];
  const stack = [pid];
  while (stack.length && seen.length < limit) {
    const p = stack.pop() as number;
    if (seen.includes(p)) continue;
    seen.push(p);
    stack.push(...childrenOf(p));
  }
  return seen;
}

export interface TreeUsage {
  cpuTicks: number;
  rssBytes: number;
  pids: number[];
}

export function treeUsage(pid: number): TreeUsage | null {
  return usageOf(pid, processTree(pid))?.usage ?? null;
}

/** `complete`: every listed process was still there. */
function usageOf(root: number, pids: number[]): { usage: TreeUsage; complete: boolean } | null {
  let cpuTicks = 0;
  let rssBytes = 0;
  let complete = true;
  for (const p of pids) {
    const st = readProcStat(p);
    if (!st) {
      if (p === root) return null;
      complete = false;
      continue;
    }
    cpuTicks += st.cpuTicks;
    rssBytes += st.rssBytes;
  }
  return { usage: { cpuTicks, rssBytes, pids }, complete };
}

/**
 * treeUsage for many workers each tick. Finding a tree's members reads a
 * `children` file per thread of each process, ten or more for a Node or
 * Python worker, so the members are found again only every `rewalkMs`, or
 * at once when one of them has gone; in between only their stat files are
 * read. A child started since the last walk is counted from the next one.
 */
export class TreeUsageSampler {
  private readonly trees = new Map<number, { pids: number[]; walkedAt: number }>();

  constructor(private readonly rewalkMs = 5000) {}

  usage(pid: number, now: number): TreeUsage | null {
    const cached = this.trees.get(pid);
    if (cached && now - cached.walkedAt < this.rewalkMs) {
      const u = usageOf(pid, cached.pids);
      if (!u) return null;
      if (u.complete) return u.usage;
    }
    const pids = processTree(pid);
    this.trees.set(pid, { pids, walkedAt: now });
    return usageOf(pid, pids)?.usage ?? null;
  }

  /** Forgets trees whose root is not in `live`. */
  retain(live: Iterable<number>): void {
    const keep = new Set(live);
    for (const pid of this.trees.keys()) if (!keep.has(pid)) this.trees.delete(pid);
  }
}

/** The kernel's count of OOM kills in this cgroup, or null where it cannot be read. */
export function cgroupOomKills(): number | null {
  try {
    const text = fs.readFileSync('/sys/fs/cgroup/memory.events', 'utf8');
    const m = /^oom_kill (\d+)$/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** A process's command line, its arguments joined by spaces and cut at 300 characters; null when it is gone. */
export function readCmdline(pid: number): string | null {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const text = raw.split('\0').filter(Boolean).join(' ');
    return text ? text.slice(0, 300) : null;
  } catch {
    // Gone, or not ours to read: the pid is all there is to say.
    return null;
  }
}
