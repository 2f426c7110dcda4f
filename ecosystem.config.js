// @ts-check
'use strict';
// PM2 loads this file with require(): keep it CommonJS. It lists only the
// daemons that exist. Each runs compiled from dist/ when the build is
// current, else its TypeScript source through tsx.
const fs = require('node:fs');
const path = require('node:path');
const { resolveEntry } = require('./scripts/entry.js');
const { daemonEnv, isSecretName, saveSecrets } = require('./scripts/daemon-env.js');
const { configProblem } = require('./scripts/config-check.js');
const { DAEMON_V8_FLAGS } = require('./scripts/daemon-v8-flags.js');

const root = __dirname;
function configPath() {
  if (process.env.SWARM_CONFIG) return path.resolve(process.env.SWARM_CONFIG);
  const local = path.resolve('swarm.config.json');
  return fs.existsSync(local) ? local : path.join(root, 'examples', 'demo', 'swarm.config.json');
}

// A bad config stops `pm2 start ecosystem.config.js` here, before PM2 starts a daemon, with the message
// `swarmctl up` prints; started anyway, six daemons would crash-loop with the reason only in PM2's logs.
const problem = configProblem(configPath());
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(2);
}

// Order matters for `swarmctl down`: the watchers go first.
const DAEMONS = [
  'watchdog',
  'hang-guard',
  'orchestrator-consensus',
  'util-controller',
  'worker-sentry',
  'session-state-manager',
  'operator-gateway',
];
const DAEMON_NODE_ARGS = (process.env.SWARM_DAEMON_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
// PM2 holds this environment and shows it to `pm2 env` and `pm2 jlist`: no secret-named variable goes in.
// Those the config asks for go to the state folder's secrets.json, 0600, where the daemons read them.
const split = daemonEnv(process.env, configPath());
const env = {
  ...split.env,
  SWARM_CONFIG: configPath(),
  NODE_NO_WARNINGS: '1',
  // Named, because filter_env below keeps PM2 from passing the caller's: the daemons must reach this PM2.
  PM2_HOME: path.resolve(process.env.PM2_HOME ?? path.join(process.env.HOME ?? require('node:os').homedir(), '.pm2')),
};
if (process.env.SWARM_STATE_DIR) Object.assign(env, { SWARM_STATE_DIR: path.resolve(process.env.SWARM_STATE_DIR) });
// swarmctl up saves the secrets itself; `pm2 start ecosystem.config.js` is the other way in. There, once
// saved, they leave this (short-lived) pm2 command's environment: PM2 merges the caller's environment into
// the apps' own when it restarts apps that already run.
if (process.env.PM2_USAGE === 'CLI') {
  saveSecrets(split.stateDir, split.secrets);
  for (const k of Object.keys(process.env)) if (isSecretName(k)) delete process.env[k];
}

module.exports = {
  apps: DAEMONS.map((name) => {
    const entry = resolveEntry(`daemons/${name}.ts`);
    return {
      name,
      script: entry.script,
      interpreter: process.execPath,
      // Small and lean rather than fast: scripts/daemon-v8-flags.js says why.
      // SWARM_DAEMON_NODE_ARGS adds Node flags for a look inside, e.g.
      // "--cpu-prof --cpu-prof-dir=/tmp/prof" (docs/PERFORMANCE.md).
      interpreter_args: [entry.compiled ? '' : '--import tsx', ...DAEMON_V8_FLAGS, ...DAEMON_NODE_ARGS]
        .join(' ')
        .trim(),
      cwd: root,
      exec_mode: 'fork',
      autorestart: true,
      // Graceful stop inside this; the daemon forces its own exit a second earlier.
      kill_timeout: 5000,
      restart_delay: 1000,
      // A daemon exits 2 only for what a restart cannot fix (a bad config, a key file, a folder another
      // swarm holds): PM2 leaves it stopped instead of crash-looping, and the reason is in its log.
      stop_exit_codes: [2],
      exp_backoff_restart_delay: 200,
      merge_logs: true,
      // Only `env`: PM2 7 ignores `filter_env: true`; every name contains '', so this list drops the caller's whole environment.
      filter_env: [''],
      env,
    };
  }),
};
