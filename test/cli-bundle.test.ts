import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, SWARMCTL } from './helpers/swarm';
import { tmpDir } from './helpers/tmp';

// swarmctl runs from one bundled file with a V8 code cache when the build is
// current (npm test builds first). A cache that does not match is V8's to
// reject: the command still answers, and the cache is made again.

const BUNDLE = path.join(ROOT, 'dist', 'scripts', 'swarmctl.bundle.js');
// swarmctl takes the bundle only while the build is newer than every source (an edit since runs tsx).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { resolveEntry } = require('../scripts/entry.js') as { resolveEntry: (s: string) => { compiled: boolean } };
const bundled = fs.existsSync(BUNDLE) && resolveEntry('scripts/swarmctl-main.ts').compiled;
const CACHE = `${BUNDLE}.v8cache`;

describe('the bundled CLI', () => {
  it.skipIf(!bundled)('answers the same with a garbage code cache, and makes a good one again', () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'swarm.config.json');
    fs.writeFileSync(cfg, JSON.stringify({ name: 'b', stateDir: '.', jobs: { j: { command: ['true'] } } }));
    const query = () => spawnSync(SWARMCTL, ['query', '--json', '--config', cfg], { encoding: 'utf8' });
    const first = query();
    expect(first.status).toBe(0);
    const garbage = Buffer.from('not a code cache at all');
    fs.writeFileSync(CACHE, garbage);
    const second = query();
    expect(second.status).toBe(0);
    expect(second.stderr).toBe('');
    const strip = (s: string) => JSON.parse(s.replace(/"generatedAt": "[^"]+"/, '"generatedAt": ""')) as unknown;
    expect(strip(second.stdout)).toEqual(strip(first.stdout));
    const remade = fs.readFileSync(CACHE);
    expect(remade.equals(garbage)).toBe(false);
    expect(remade.length).toBeGreaterThan(10_000);
  });
});
