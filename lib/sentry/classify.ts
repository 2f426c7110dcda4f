import type { FailureRule } from '../config/config';
import type { FailureClass } from '../event-kinds';

// Why did a worker exit? User rules first, then what the log tail proves
// (a SyntaxError will fail the same way every time), then memory, then a
// plain crash with its exact code and signal.

export const DETERMINISTIC_PATTERNS: { re: RegExp; label: string }[] = [
  { re: /\bSyntaxError\b/, label: 'SyntaxError' },
  { re: /\bModuleNotFoundError\b/, label: 'ModuleNotFoundError' },
  { re: /\bImportError\b/, label: 'ImportError' },
  { re: /\bIndentationError\b/, label: 'IndentationError' },
  { re: /Cannot find module '[^']+'/, label: 'Cannot find module' },
  { re: /\bERR_MODULE_NOT_FOUND\b/, label: 'ERR_MODULE_NOT_FOUND' },
  { re: /: command not found|worker-shim: cannot start/, label: 'command not found' },
];

export type RuleAction = FailureRule['action'];

export interface ExitFacts {
  exitCode: number | null;
  signal: string | null;
  logTail: string;
  lastRssBytes: number | null;
  memoryLimitBytes: number | null;
  kernelOomKilled: boolean;
}

export interface Classification {
  class: FailureClass;
  action: RuleAction | 'quarantine';
  evidence: Record<string, unknown>;
}

/** Near the limit: a worker killed while above 90% of it is taken as out of memory. */
export const OOM_NEAR_FRACTION = 0.9;

// "database is locked" (SQLite) and DuckDB's "Conflicting lock is held in <file> (PID n)".
const LOCK_PATTERNS = [/database is locked/i, /Conflicting lock is held in .*\(PID (\d+)\)/];

export function classifyLogTail(rules: FailureRule[], tail: string): Classification | null {
  for (const rule of rules) {
    if (rule.test(tail))
      return {
        class: rule.class,
        action: rule.action,
        evidence: { rule: rule.matchText, matchedLine: lineOf(tail, rule.test) },
      };
  }
  for (const re of LOCK_PATTERNS) {
    const m = re.exec(tail);
    if (m)
      return {
        class: 'lock_conflict',
        action: 'restart',
        evidence: { holderPid: m[1] ? Number(m[1]) : null, matchedLine: lineOf(tail, (l) => re.test(l)) },
      };
  }
  for (const p of DETERMINISTIC_PATTERNS) {
    if (p.re.test(tail)) {
      return {
        class: 'deterministic_failure',
        action: 'quarantine',
        evidence: { pattern: p.label, matchedLine: lineOf(tail, (l) => p.re.test(l)) },
      };
    }
  }
  return null;
}

export function classifyExit(rules: FailureRule[], f: ExitFacts): Classification {
  const base = { exitCode: f.exitCode, signal: f.signal };
  const fromLog = classifyLogTail(rules, f.logTail);
  if (fromLog) return { ...fromLog, evidence: { ...base, ...fromLog.evidence } };
  const nearLimit =
    f.memoryLimitBytes !== null && f.lastRssBytes !== null && f.lastRssBytes >= OOM_NEAR_FRACTION * f.memoryLimitBytes;
  if (f.signal === 'SIGKILL' && (f.kernelOomKilled || nearLimit)) {
    return {
      class: 'worker_oom',
      action: 'restart',
      evidence: {
        ...base,
        lastRssBytes: f.lastRssBytes,
        memoryLimitBytes: f.memoryLimitBytes,
        kernelOomKill: f.kernelOomKilled,
      },
    };
  }
  if (/\bout of memory\b|JavaScript heap out of memory|MemoryError|std::bad_alloc/i.test(f.logTail)) {
    return {
      class: 'worker_oom',
      action: 'restart',
      evidence: { ...base, matchedLine: lineOf(f.logTail, (l) => /out of memory|MemoryError|bad_alloc/i.test(l)) },
    };
  }
  return { class: 'worker_crashed', action: 'restart', evidence: base };
}

function lineOf(text: string, test: (line: string) => boolean): string | null {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i] as string;
    if (test(l)) return l.slice(0, 500);
  }
  return null;
}
