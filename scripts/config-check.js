// @ts-check
'use strict';
// The config check `pm2 start ecosystem.config.js` runs before PM2 starts
// anything: the same loader and the same message as `swarmctl up`. PM2
// require()s the ecosystem file, so this is CommonJS and loads lib/config
// compiled from dist/ when the build is current, else through tsx.
const { resolveEntry } = require('./entry.js');

/**
 * @param {string} file the config file
 * @returns {string | null} the message `swarmctl up` prints for it, or null when it is valid
 */
function configProblem(file) {
  const entry = resolveEntry('lib/config/config.ts');
  /** @type {{ loadConfig(file: string): unknown }} */
  const config = entry.compiled ? require(entry.script) : require('tsx/cjs/api').require(entry.script, __filename);
  try {
    config.loadConfig(file);
    return null;
  } catch (err) {
    const e = /** @type {Error} */ (err);
    if (e.name !== 'ConfigError') throw err;
    return `swarmctl: ${e.message}`;
  }
}

module.exports = { configProblem };
