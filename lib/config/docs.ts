import { BASE_ENV_NAMES } from '../worker-env';
import { BYTES_PATTERN, DURATION_PATTERN, NAME_PATTERN } from './primitives';
import { configJsonSchemaObject } from './json-schema';
import { FAILURE_CLASSES } from '../event-kinds';

// docs/config.md is generated from the zod schema (through its JSON Schema),
// so the reference cannot drift from what the loader accepts: every field,
// its type, default and meaning. A test compares the committed file with
// this output and fails on a field without a description.

interface Node {
  type?: string;
  anyOf?: Node[];
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  default?: unknown;
  description?: string;
  properties?: Record<string, Node>;
  required?: string[];
  additionalProperties?: Node | boolean;
  propertyNames?: Node;
  items?: Node;
  minItems?: number;
}

export interface FieldDoc {
  path: string;
  type: string;
  default: string;
  description: string | undefined;
}

function range(n: Node): string {
  const lo = n.minimum;
  const hi = n.maximum !== undefined && n.maximum < Number.MAX_SAFE_INTEGER ? n.maximum : undefined;
  if (lo === undefined && hi === undefined) return '';
  if (hi === undefined) return ` ≥ ${lo}`;
  return lo === undefined ? ` ≤ ${hi}` : ` ${lo}–${hi}`;
}

function typeOf(n: Node): string {
  const alt = n.anyOf?.[0];
  if (alt?.pattern === DURATION_PATTERN) return 'duration';
  if (alt?.pattern === BYTES_PATTERN) return 'size';
  if (n.enum && n.enum.length === FAILURE_CLASSES.length && FAILURE_CLASSES.every((c) => n.enum?.includes(c)))
    return 'failure class';
  if (n.enum) return n.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  switch (n.type) {
    case 'string':
      return n.pattern === NAME_PATTERN ? 'name' : 'string';
    case 'integer':
    case 'number':
      return `${n.type}${range(n)}`;
    case 'boolean':
      return 'boolean';
    case 'array':
      return `list of ${n.items ? typeOf(n.items) : 'any'}${n.minItems ? ` (at least ${n.minItems})` : ''}`;
    case 'object':
      if (n.properties) return 'object';
      if (typeof n.additionalProperties === 'object') return `map of name → ${typeOf(n.additionalProperties)}`;
      return 'object';
    default:
      return n.anyOf ? n.anyOf.map(typeOf).join(' or ') : 'any';
  }
}

function defaultOf(n: Node, required: boolean): string {
  if (n.default === undefined) return required ? 'required' : 'unset';
  if (n.default !== null && typeof n.default === 'object' && !Array.isArray(n.default))
    return Object.keys(n.default).length ? 'see its fields' : '`{}`';
  return `\`${JSON.stringify(n.default)}\``;
}

/** Rows for n and what it holds; the entries of a map or a list get no row of their own, only their fields. */
function walk(n: Node, path: string, required: boolean, out: FieldDoc[], row = true): void {
  if (row && path) out.push({ path, type: typeOf(n), default: defaultOf(n, required), description: n.description });
  const children = n.properties;
  if (children) {
    for (const [key, child] of Object.entries(children)) {
      if (key === '$schema') continue;
      walk(child, path ? `${path}.${key}` : key, n.required?.includes(key) ?? false, out);
    }
  } else if (n.type === 'object' && typeof n.additionalProperties === 'object' && n.additionalProperties.properties) {
    walk(n.additionalProperties, `${path}.<name>`, true, out, false);
  } else if (n.type === 'array' && n.items?.properties) {
    walk(n.items, `${path}[]`, true, out, false);
  }
}

export function configFields(): FieldDoc[] {
  const schema = configJsonSchemaObject() as Node;
  const out: FieldDoc[] = [];
  walk(schema, '', true, out);
  return out;
}

const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function configMarkdown(): string {
  const rows = configFields().map((f) => `| \`${f.path}\` | ${f.type} | ${f.default} | ${esc(f.description ?? '')} |`);
  return [
    '# Config reference',
    '',
    '<!-- Generated from lib/config/schema.ts by `npm run gen:docs`; a test fails when it is stale. -->',
    '',
    'Swarm reads one JSON file: `--config PATH`, else `$SWARM_CONFIG`, else `./swarm.config.json`, else the',
    'embedded demo (`examples/demo/swarm.config.json`). The JSON Schema is `docs/swarm.config.schema.json`;',
    'point an editor at it with `"$schema"` for completion.',
    '',
    '- A **duration** is a string with a unit (`"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`) or integer milliseconds.',
    '- A **size** is an integer of bytes, or a number with `K`, `M`, `G` or `T` (binary units: `"512M"`, `"4G"`).',
    `- A **name** is letters, digits, \`_\`, \`.\` or \`-\`, starting with a letter or digit, at most 64 characters (\`${NAME_PATTERN}\`).`,
    '- A **failure class** is one of those listed in `docs/events.md`.',
    "- Relative paths are relative to the config file's folder.",
    '- `${taskId}`, `${workerId}` and `${attempt}` are replaced in `args`, `progress.path`, `artifacts[].path`,',
    '  `verify.command`, `fallbacks[].args` and `strategies`; any other `${…}` is refused.',
    '- `SWARM_STATE_DIR` overrides `stateDir`.',
    '',
    'A bad config is refused before anything starts: `swarmctl` exits 2 and names the file, the path inside it',
    '(`jobs.optimizer.restart.budget`) and what was expected. No field is accepted that is not listed here.',
    '',
    '| field | type | default | meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    "## What a job's processes get",
    '',
    'Each worker runs its `command` and `args` as an argv (never through a shell), in its own process group,',
    `with ${BASE_ENV_NAMES.map((n) => `\`${n}\``).join(', ')} and \`LC_*\` from the environment Swarm was started with,`,
    "what the job's `envPassthrough` names from it, the job's `env`, and nothing else of the caller's (docs/SECURITY.md). Then:",
    '',
    '| variable | value |',
    '| --- | --- |',
    '| `SWARM_RUN_ID` | the run |',
    '| `SWARM_WORKER_ID` | the worker: `JOB-TASKID` for a task, `JOB-N` for replica N (from 0) |',
    '| `SWARM_TASK_ID` | the task id; empty for a replica |',
    '| `SWARM_ATTEMPT` | 1 on the first launch of a task or replica slot, +1 on each relaunch |',
    '| `SWARM_CHECKPOINT_DIR` | the same folder on every attempt of one task: resume from it |',
    '| `SWARM_PROGRESS_FILE` | where Swarm looks for progress (`progress.path`, or `progress.json` in the checkpoint folder) |',
    "| `SWARM_LAST_FAILURE` | `last-failure.json` in the checkpoint folder, there from the second attempt after a failure: the last failure's `class`, `evidence`, `exitCode`, `signal`, `logTail` (the last 4 KiB of output, secrets cut out), `verify` (the guard's output), `tried` (every class this task failed with, and how often) and `stagnation` (`{repeated, count}`, or null) |",
    "| `CUDA_VISIBLE_DEVICES` | on a gpu lane, the GPUs of the worker's slot; on a cpu lane, empty (no GPU), unless the lane sets `hideGpus: false` |",
    '',
    'Write `{"updatedAt": "…"}` (or anything, as long as the file\'s mtime moves) to the progress file after each',
    'step. Optional fields that Swarm reads from the same JSON: `metric` (for `plateau`),',
    '`operation: {"name", "deadline"}` (hang-guard ends the worker past the deadline), and for people',
    '`iteration`, `total`, `best`, `status` and `message`: `query` and `status` show them ("21/50 best=0.031',
    '(in_progress)", with an ETA). A field of the wrong type is left out, with one warning per worker.',
    '',
  ].join('\n');
}
