import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// Each daemon's memory is mostly the modules it loads. PM2's client, the
// PostgreSQL driver, esbuild, chokidar and node-cron cost a daemon 3–8 MiB
// each, and most swarms use them in no daemon, so they are loaded on first
// use. This loads what each built daemon imports (dist/, as PM2 runs it)
// and lists the packages that came with it.

const ROOT = path.join(__dirname, '..');
const LAZY = ['pm2', 'pg', 'esbuild', 'chokidar', 'node-cron'];
// The watchdog watches the config file for `reload` with chokidar, always.
const NEEDS: Record<string, string[]> = { watchdog: ['chokidar'] };

function packagesLoadedBy(daemon: string): string[] {
  const src = fs.readFileSync(path.join(ROOT, 'daemons', `${daemon}.ts`), 'utf8');
  const mods = [...src.matchAll(/from '\.\.\/(lib\/[^']+)'/g)].map((m) => path.join(ROOT, 'dist', `${m[1]}.js`));
  expect(mods.length).toBeGreaterThan(0);
  const code = `const M = require('module'); const seen = new Set(); const load = M._load;
M._load = function (r) { seen.add(r); return load.apply(this, arguments); };
for (const m of JSON.parse(process.argv[1])) require(m);
process.stdout.write(JSON.stringify([...seen].filter((r) => !/^(\\.|\\/|node:)/.test(r))));`;
  const r = spawnSync(process.execPath, ['-e', code, JSON.stringify(mods)], { encoding: 'utf8', timeout: 30_000 });
  expect(r.stderr).toBe('');
  return (JSON.parse(r.stdout) as string[]).map((p) => (p.startsWith('@') ? p : (p.split('/')[0] as string)));
}

describe('what a daemon loads', () => {
  const daemons = fs.readdirSync(path.join(ROOT, 'daemons')).map((f) => f.replace(/\.ts$/, ''));
  it.each(daemons)('%s loads no package it may never use', (daemon) => {
    const loaded = new Set(packagesLoadedBy(daemon));
    // The check can see a package: every daemon loads zod and better-sqlite3.
    expect(loaded.has('zod') && loaded.has('better-sqlite3')).toBe(true);
    const unwanted = LAZY.filter((p) => loaded.has(p) && !(NEEDS[daemon] ?? []).includes(p));
    expect(unwanted).toEqual([]);
  });
});
