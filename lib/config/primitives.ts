import { z } from 'zod';
import { parseBytes, parseDurationMs } from '../duration';

// The config's small types, shared by every section: names, durations and
// sizes, with the one message each gives when a value is not one.

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const nameRe = new RegExp(NAME_PATTERN);

// Each field describes what it means; what a duration or a size is, docs/config.md says once.
export const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h|d)$';
export const BYTES_PATTERN = '^\\d+(\\.\\d+)?\\s*[KMGTkmgt]?(i?B)?$';

/**
 * Node fires a timer set past 2^31-1 ms after 1 ms instead, so a longer
 * duration would spin a tick or kill at once: the cap is a round 24 days.
 */
export const MAX_DURATION_MS = 24 * 86_400_000;

export const Duration = z
  .union([
    z
      .string()
      .regex(new RegExp(DURATION_PATTERN), { message: 'expected a duration such as "500ms", "30s", "5m" or "2h"' }),
    z.number().int().nonnegative(),
  ])
  .refine((v) => parseDurationMs(v) !== null, { message: 'expected a duration such as "500ms", "30s", "5m" or "2h"' })
  .refine((v) => (parseDurationMs(v) ?? 0) <= MAX_DURATION_MS, {
    message: 'expected at most "24d": timers cannot wait longer',
  });

/** The shortest tick there is; config.ts raises a shorter one to this. */
export const MIN_TICK_MS = 50;

export const Bytes = z
  .union([z.string().regex(new RegExp(BYTES_PATTERN)), z.number().int().positive()])
  .refine((v) => parseBytes(v) !== null, { message: 'expected a size such as "512M" or "4G"' });

export const Name = z
  .string()
  .regex(nameRe, { message: `expected a name of letters, digits, '_', '.' or '-' (pattern ${NAME_PATTERN})` });
