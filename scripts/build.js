// @ts-check
'use strict';
// npm run build: type-check and compile to dist/, then stamp the build so
// scripts/entry.js knows dist/ is current.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const stamp = path.join(root, 'dist', '.build-stamp');
fs.rmSync(stamp, { force: true });
for (const args of [
  ['--noEmit', '-p', 'tsconfig.json'],
  ['-p', 'tsconfig.build.json'],
]) {
  const r = spawnSync(process.execPath, [tsc, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
// The CLI's one-file copy, then the stamp: a stamp always means both are current.
require('./bundle-cli.js').bundleCli();
fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
