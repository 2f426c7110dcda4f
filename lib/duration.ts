// Durations and byte sizes as users write them in the config ("30s", "4G").
// Parsed once at the edge; everything inside works in milliseconds and bytes.

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Returns milliseconds, or null when the text is not a duration. */
export function parseDurationMs(value: string | number): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : null;
  const m = DURATION_RE.exec(value.trim());
  if (!m) return null;
  const unit = DURATION_UNIT_MS[m[2] as string];
  if (unit === undefined) return null;
  return Math.round(Number(m[1]) * unit);
}

const BYTES_RE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)?$/i;
const BYTES_POWER: Record<string, number> = { '': 0, K: 1, M: 2, G: 3, T: 4 };

/** "4G", "512M", "1.5GiB" or an integer count of bytes. Units are binary, as PM2's max_memory_restart. */
export function parseBytes(value: string | number): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : null;
  const m = BYTES_RE.exec(value.trim());
  if (!m) return null;
  const power = BYTES_POWER[(m[2] ?? '').toUpperCase()];
  if (power === undefined) return null;
  return Math.round(Number(m[1]) * 1024 ** power);
}

/** "31s", "4m 10s", "2h 5m": short words for a person reading `status`. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** The shortest config-style spelling of a duration, for messages ("limit 30s"). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
