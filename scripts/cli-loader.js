// @ts-check
'use strict';
// Runs swarmctl's bundle (scripts/bundle-cli.js) with a V8 code cache beside
// it: the first run compiles and saves the cache, later runs skip the
// compile. V8 checks the cache against the source and its own version and
// flags, and a cache it rejects is simply made again.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

/** @param {string} bundle */
function runBundle(bundle) {
  const cacheFile = `${bundle}.v8cache`;
  const source = fs.readFileSync(bundle, 'utf8');
  /** @type {Buffer | undefined} */
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined; // first run since the build: it makes the cache
  }
  const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) {
    // After the command has run, so the cache holds the functions it compiled too.
    process.once('exit', () => saveCache(script, cacheFile));
  }
  const mod = { exports: {} };
  const fn = script.runInThisContext();
  fn.call(mod.exports, mod.exports, Module.createRequire(bundle), mod, bundle, path.dirname(bundle));
}

/** @param {vm.Script} script @param {string} file */
function saveCache(script, file) {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (err) {
    // A read-only install runs without a cache, only slower: say so where asked, never on stdout.
    fs.rmSync(tmp, { force: true });
    if (process.env.SWARM_LOG_LEVEL === 'debug') process.stderr.write(`swarmctl: no code cache (${String(err)})\n`);
  }
}

module.exports = { runBundle };
