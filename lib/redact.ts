// Values of variables named like credentials must never reach a log or an
// event. Redaction works on structured values, before anything is
// serialized: it replaces text inside strings and never touches the
// structure, so it cannot make invalid JSON out of evidence, whatever the
// secret holds (`"`, `\`, `false`, a number).

import type { CompiledConfig } from './config/config';
import { isSecretName } from './daemon-env';

/**
 * Shorter values are not secrets worth hiding, and they match too much:
 * `TOKENIZERS_PARALLELISM=false` or `MAX_TOKENS=4096` would blank out every
 * `false` and every 4096 in the evidence.
 */
export const MIN_SECRET_LENGTH = 6;

export const REDACTED = '[redacted]';

/** `--api-key=VALUE`, `-password=VALUE`, `token=VALUE`: a name like a credential's, then its value. */
const SECRET_ASSIGNMENT = /^(-{0,2}[A-Za-z0-9_.-]*(?:key|token|secret|password)[A-Za-z0-9_.-]*=)(.+)$/i;
/** `--api-key VALUE`: the flag alone, its value the next argument. */
const SECRET_FLAG = /^--?[A-Za-z0-9_.-]*(?:key|token|secret|password)[A-Za-z0-9_.-]*$/i;

export class Redactor {
  /** Longest first, so a secret that contains another is cut whole. */
  private readonly secrets: string[];

  constructor(secrets: Iterable<string>) {
    this.secrets = [...new Set(secrets)]
      .filter((s) => s.length >= MIN_SECRET_LENGTH)
      .sort((a, b) => b.length - a.length);
  }

  /** The secret values among these environments: every variable whose name looks like a credential's. */
  static fromEnvs(...envs: Record<string, string | undefined>[]): Redactor {
    const values: string[] = [];
    for (const env of envs)
      for (const [k, v] of Object.entries(env)) if (v !== undefined && isSecretName(k)) values.push(v);
    return new Redactor(values);
  }

  text(s: string): string {
    let out = s;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }

  /**
   * An argument list: known secret values anywhere, and the value of any
   * argument named like a credential (`--db-password=…`, `--api-key …`),
   * which a task may carry without its variable being set here.
   */
  argv(args: readonly string[]): string[] {
    return args.map((a, i) => {
      const assigned = SECRET_ASSIGNMENT.exec(a);
      if (assigned) return `${assigned[1] ?? ''}${REDACTED}`;
      const prev = args[i - 1];
      if (prev !== undefined && SECRET_FLAG.test(prev) && !a.startsWith('-')) return REDACTED;
      return this.text(a);
    });
  }

  /** A copy of any JSON-like value with every string redacted; lists of strings are read as argument lists. */
  value<T>(v: T): T {
    return this.walk(v) as T;
  }

  private walk(v: unknown): unknown {
    if (typeof v === 'string') return this.text(v);
    if (v instanceof Date) return v.toISOString();
    if (Array.isArray(v))
      return v.every((x) => typeof x === 'string') ? this.argv(v as string[]) : v.map((x) => this.walk(x));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = this.walk(x);
      return out;
    }
    return v;
  }
}

export const noRedaction = new Redactor([]);

/** What a swarm must keep out of its log: the secrets of its own environment and of every job's `env`. */
export function configRedactor(config: CompiledConfig, env: NodeJS.ProcessEnv = process.env): Redactor {
  return Redactor.fromEnvs(env, ...Object.values(config.jobs).map((j) => j.env));
}
