import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram } from '../lib/cli/program';
import { loadConfig } from '../lib/config/config';
import { ACTION_TYPES, EVENT_KINDS, FAILURE_CLASSES } from '../lib/event-kinds';
import { openDb } from '../lib/db';
import { swarmRegistry } from '../lib/gateway/metrics';
import { buildSnapshot } from '../lib/snapshot';
import { EscalationSchema, IncidentSchema, WorkerViewSchema } from '../lib/state-files';
import { fakeNvidiaSmi } from './helpers/fake-smi';
import { ROOT } from './helpers/swarm';
import { tmpDir } from './helpers/tmp';

// The repository documents its own outside (docs/cli.md, docs/events.md,
// docs/config.md, whose own test is in config.test.ts) and reads nothing
// beside the checkout: a user's clone has nothing there.

const doc = (name: string) => fs.readFileSync(path.join(ROOT, 'docs', name), 'utf8');
/** The names in backticks in the first cell of each markdown table row (`run.paused` / `run.unpaused` gives both). */
const firstCells = (md: string) =>
  [...md.matchAll(/^\| ([^|]+) \|/gm)].flatMap((m) => [...(m[1] ?? '').matchAll(/`([^`]+)`/g)].map((n) => n[1] ?? ''));
const jsonBlocks = (md: string) =>
  [...md.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1] ?? '') as Record<string, unknown>);

describe('docs/cli.md', () => {
  const cli = doc('cli.md');
  const program = buildProgram(() => undefined);
  const commands = program.commands as Command[];

  it('has every command with each of its arguments and flags', () => {
    expect(commands.length).toBeGreaterThan(10);
    for (const c of commands) {
      const line = cli.split('\n').find((l) => l.startsWith(`| \`${c.name()} `) || l.startsWith(`| \`${c.name()}\``));
      expect(line, `command ${c.name()}`).toBeDefined();
      for (const a of c.registeredArguments) expect(line, `${c.name()} <${a.name()}>`).toContain(a.name());
      for (const o of c.options) {
        if (o.long === '--json' || o.long === '--config') continue;
        expect(line, `${c.name()} ${o.long}`).toContain(o.flags);
      }
    }
    for (const o of program.options) expect(cli).toContain(`\`${o.flags}\``);
  });

  it('gives the exit codes swarmctl uses', () => {
    for (const code of ['0', '1', '2']) expect(cli).toMatch(new RegExp(`^\\| ${code} \\|`, 'm'));
  });

  it('shows every field query --json prints, at every level, with its schemaVersion', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'swarm.config.json');
    fs.writeFileSync(file, JSON.stringify({ name: 'docs', jobs: { j: { command: ['true'] } } }));
    const snap = buildSnapshot(loadConfig(file, {}));
    const documented = jsonBlocks(cli).find((b) => 'generatedAt' in b) ?? {};
    expect(Object.keys(documented).sort()).toEqual(Object.keys(snap).sort());
    expect(documented.schemaVersion).toBe(snap.schemaVersion);
    expect(Object.keys(snap.tasks).sort()).toEqual(Object.keys(documented.tasks as object).sort());
    const first = (k: string) => (documented[k] as Record<string, unknown>[])[0] ?? {};
    // The nested shapes, from the schemas the snapshot is read through.
    expect(Object.keys(first('workers')).sort()).toEqual(Object.keys(WorkerViewSchema.shape).sort());
    expect(Object.keys(first('incidents')).sort()).toEqual(Object.keys(IncidentSchema.shape).sort());
    expect(Object.keys(first('escalations')).sort()).toEqual(Object.keys(EscalationSchema.shape).sort());
    expect(Object.keys(first('daemons')).sort()).toEqual(Object.keys(snap.daemons[0] ?? {}).sort());
    expect(Object.keys(documented.run as object).sort()).toEqual(['degraded', 'id', 'paused', 'startedAt', 'status']);
  });

  it('shows the shapes probe gpu --json prints, with a GPU and without', () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'c.json');
    fs.writeFileSync(cfg, JSON.stringify({ name: 'g', stateDir: 'state', jobs: { j: { command: ['true'] } } }));
    const smi = fakeNvidiaSmi(dir, { fixture: 'a10g.xml', pids: { '0': [1234] } });
    const probe = () => {
      const r = spawnSync(path.join(ROOT, 'scripts', 'swarmctl'), ['probe', 'gpu', '--json', '--config', cfg], {
        encoding: 'utf8',
        env: { ...process.env, SWARM_NVIDIA_SMI: smi.bin },
      });
      expect(r.status).toBe(0);
      return JSON.parse(r.stdout) as { gpus: { processes: object[] }[] } & Record<string, unknown>;
    };
    const real = probe();
    const documented = (jsonBlocks(cli).find((b) => 'driverVersion' in b) ?? {}) as typeof real;
    const keys = (o: object | undefined) => Object.keys(o ?? {}).sort();
    expect(keys(documented)).toEqual(keys(real));
    expect(keys(documented.gpus[0])).toEqual(keys(real.gpus[0]));
    expect(keys(documented.gpus[0]?.processes[0])).toEqual(keys(real.gpus[0]?.processes[0]));
    smi.set({ mode: 'garbage' });
    const none = probe();
    expect(cli).toContain(
      `\`${JSON.stringify({ ...none, reason: '…' })
        .replace(/([:,])/g, '$1 ')
        .replace(/^\{/, '{ ')
        .replace(/\}$/, ' }')}\``,
    );
  });
});

describe('docs/events.md', () => {
  const events = doc('events.md');
  const rows = firstCells(events);

  it('has a row for every event kind, failure class and action type, and no other', () => {
    for (const k of EVENT_KINDS) expect(rows, k).toContain(k);
    for (const c of FAILURE_CLASSES) expect(rows, c).toContain(c);
    for (const a of ACTION_TYPES) expect(rows, a).toContain(a);
    const known = new Set<string>([...EVENT_KINDS, ...FAILURE_CLASSES, ...ACTION_TYPES, 'detect.CLASS']);
    const sectionRows = rows.filter(
      (r) =>
        /^[a-z_]+(\.[a-zA-Z_]+)?$/.test(r) &&
        !['seq', 'ts', 'run_id', 'source', 'kind', 'target', 'severity', 'action_id', 'data', 'hash'].includes(r),
    );
    expect(sectionRows.filter((r) => !known.has(r))).toEqual([]);
  });
});

describe('docs/metrics.md', () => {
  it('has a row for every metric /metrics serves, and no other', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'swarm.config.json');
    fs.writeFileSync(file, JSON.stringify({ name: 'docs', jobs: { j: { command: ['true'] } } }));
    const config = loadConfig(file, {});
    const db = openDb(config.stateDir);
    try {
      const served = (await swarmRegistry({ config: () => config, db }).getMetricsAsJSON()).map((m) => m.name);
      const rows = firstCells(doc('metrics.md')).filter((r) => r.startsWith('swarm_') && !r.includes('{'));
      expect(served.length).toBeGreaterThanOrEqual(13);
      expect([...new Set(rows)].sort()).toEqual([...served].sort());
    } finally {
      db.close();
    }
  });
});

describe('the checkout stands alone', () => {
  it('no tracked file reads or links to anything beside the checkout', () => {
    const files = spawnSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    expect(files.length).toBeGreaterThan(50);
    const sibling = ['..', 'shared'];
    const patterns = [sibling.join('/'), `'${sibling.join("', '")}'`, 'CONTRACT.md'];
    const self = path.relative(ROOT, __filename);
    const offenders = files.filter((f) => {
      if (f === self || !/\.(ts|js|mts|json|md|sh)$|^\.ci\/|^scripts\//.test(f) || f.endsWith('package-lock.json'))
        return false;
      const text = fs.readFileSync(path.join(ROOT, f), 'utf8');
      return patterns.some((p) => text.includes(p));
    });
    expect(offenders).toEqual([]);
  });

  it('the README links the reference docs', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const d of ['docs/config.md', 'docs/cli.md', 'docs/events.md', 'docs/metrics.md']) expect(readme).toContain(d);
  });
});
