// @ts-check
'use strict';
// Part of `npm run build`: swarmctl's compiled code as one file. `query` is
// called in loops by scripts and agents, and most of its time was Node
// finding, reading and compiling ~150 modules; one file, loaded with a V8
// code cache (scripts/cli-loader.js), skips nearly all of that.
const path = require('node:path');
const esbuild = require('esbuild');

const { BUNDLE: OUT } = require('./bundle-paths.js');

const root = path.join(__dirname, '..');

function bundleCli() {
  esbuild.buildSync({
    entryPoints: [path.join(root, 'dist', 'scripts', 'swarmctl-main.js')],
    outfile: OUT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Native code, and packages that find their own files at run time, load
    // from node_modules as usual: only up/down load PM2, only daemons pino.
    external: ['better-sqlite3', 'pm2', 'pino', 'pino-pretty'],
    logLevel: 'warning',
    // ecosystem.config.js is loaded by absolute path at run time, on purpose.
    logOverride: { 'unsupported-require-call': 'silent' },
  });
  return OUT;
}

module.exports = { bundleCli };
