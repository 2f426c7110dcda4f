import { z } from 'zod';
import { formatAge } from '../duration';

// What a worker may say about its progress, beyond "I moved": optional
// fields of its progress JSON, as the checkpoint watcher showed them
// (21/50 best=0.031, in_progress). Each field is checked on its own: a bad
// one is left out (and the sentry warns once per worker), the rest still
// count.

const FIELDS = {
  iteration: z.number().int().nonnegative(),
  total: z.number().int().positive(),
  metric: z.number().finite(),
  best: z.number().finite(),
  status: z.string().min(1).max(64),
  message: z.string().max(500),
};

export const ProgressFieldsSchema = z.object({
  iteration: FIELDS.iteration.optional(),
  total: FIELDS.total.optional(),
  metric: FIELDS.metric.optional(),
  best: FIELDS.best.optional(),
  status: FIELDS.status.optional(),
  message: FIELDS.message.optional(),
});
export type ProgressFields = z.output<typeof ProgressFieldsSchema>;

/** The fields of a progress JSON that are valid, and the names of those present but not. */
export function readProgressFields(json: Record<string, unknown>): { fields: ProgressFields; bad: string[] } {
  const fields: Record<string, unknown> = {};
  const bad: string[] = [];
  for (const [name, schema] of Object.entries(FIELDS)) {
    if (!(name in json)) continue;
    const r = schema.safeParse(json[name]);
    if (r.success) fields[name] = r.data;
    else bad.push(name);
  }
  return { fields: fields as ProgressFields, bad };
}

/** "21/50 best=0.031 (in_progress)": what status shows of a worker's progress. */
export function describeProgress(p: ProgressFields): string {
  const parts: string[] = [];
  if (p.iteration !== undefined) parts.push(p.total !== undefined ? `${p.iteration}/${p.total}` : `#${p.iteration}`);
  if (p.metric !== undefined) parts.push(`metric=${round(p.metric)}`);
  if (p.best !== undefined) parts.push(`best=${round(p.best)}`);
  if (p.status !== undefined) parts.push(`(${p.status})`);
  return parts.join(' ');
}

const round = (x: number): string => String(Number(x.toPrecision(4)));

/**
 * Time left at the rate seen this attempt, from the first iteration it
 * reported to the latest; null while there is no rate to go by.
 */
export function etaMs(p: ProgressFields, first: { iteration: number; at: number } | null, now: number): number | null {
  if (p.iteration === undefined || p.total === undefined || first === null) return null;
  const done = p.iteration - first.iteration;
  if (done <= 0 || now <= first.at) return null;
  return Math.max(0, Math.round(((p.total - p.iteration) * (now - first.at)) / done));
}

export const formatEta = (ms: number): string => `eta ${formatAge(ms)}`;
