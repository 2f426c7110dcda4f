// @ts-check
'use strict';
// PM2 loads this file with require(): keep it CommonJS. It lists only the
// daemons that exist. Each runs compiled from dist/ when the build is
// current, else its TypeScript source through tsx.
const fs = require('node:fs');
const path = require('node:path');
const { resolveEntry } = require('./scripts/entry.js');

const root = __dirname;
function configPath() {
  if (process.env.SWARM_CONFIG) return path.resolve(process.env.SWARM_CONFIG);
  const local = path.resolve('swarm.config.json');
  return fs.existsSync(local) ? local : path.join(root, 'examples', 'demo', 'swarm.config.json');
}

// Order matters for `swarmctl down`: the watchers go first.
const DAEMONS = ['watchdog', 'hang-guard', 'orchestrator-consensus', 'util-controller', 'worker-sentry', 'session-state-manager'];
const DAEMON_NODE_ARGS = (process.env.SWARM_DAEMON_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const env = { SWARM_CONFIG: configPath(), NODE_NO_WARNINGS: '1' };
if (process.env.SWARM_STATE_DIR) Object.assign(env, { SWARM_STATE_DIR: path.resolve(process.env.SWARM_STATE_DIR) });
if (process.env.SWARM_NVIDIA_SMI) Object.assign(env, { SWARM_NVIDIA_SMI: process.env.SWARM_NVIDIA_SMI });

module.exports = {
  apps: DAEMONS.map((name) => {
    const entry = resolveEntry(`daemons/${name}.ts`);
    return {
      name,
      script: entry.script,
      interpreter: process.execPath,
      // Idle RSS per daemon is a target (docs/PERFORMANCE.md). A 1 MiB
      // semi-space keeps V8's young generation from growing to tens of MiB
      // in a process that allocates little, and scavenges of a small heap are
      // cheap. --no-opt leaves out V8's optimizing compiler: the daemons wait
      // on files, SQLite and PM2, not on JavaScript, and its code and
      // feedback cost ~5 MiB each; measured, idle CPU did not rise with it.
      // SWARM_DAEMON_NODE_ARGS adds Node flags for a look inside, e.g.
      // "--cpu-prof --cpu-prof-dir=/tmp/prof" (docs/PERFORMANCE.md).
      interpreter_args: [entry.compiled ? '' : '--import tsx', '--max-semi-space-size=1', '--no-opt', ...DAEMON_NODE_ARGS].join(' ').trim(),
      cwd: root,
      exec_mode: 'fork',
      autorestart: true,
      // Graceful stop inside this; the daemon forces its own exit a second earlier.
      kill_timeout: 5000,
      restart_delay: 1000,
      exp_backoff_restart_delay: 200,
      merge_logs: true,
      env,
    };
  }),
};
