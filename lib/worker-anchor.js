// @ts-check
'use strict';
// What PM2 runs for a worker: its anchor in PM2, and nothing more. The shim
// that owns the worker (worker-shim.js: its process group, its output, its
// exit.json) is started apart from PM2, in a session of its own with no pipe
// to this process, so when PM2's God daemon is killed and takes its children
// with it, the shim and the worker run on, and the worker's exit is still
// recorded. A restarted sentry adopts them; `pm2 resurrect` starting this
// anchor again for a shim that still runs only attaches to it.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

const SHIM = path.join(__dirname, 'worker-shim.js');
const POLL_MS = 500;

const specFile = process.argv[process.argv.length - 1];
if (!specFile || !specFile.endsWith('.json')) {
  process.stderr.write('worker-anchor: expected the path of a spec.json as last argument\n');
  process.exit(2);
}
const dir = path.dirname(specFile);
const workerId = process.env.SWARM_WORKER_ID ?? '';

/** @param {string} file */
function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** The shim this worker's folder names, if it still runs as this worker's shim (its start environment says so). */
function liveShim() {
  if (fs.existsSync(path.join(dir, 'exit.json'))) return null;
  const p = readJson(path.join(dir, 'pid.json'));
  const pid = p && Number.isInteger(p.shimPid) && p.shimPid > 1 ? p.shimPid : null;
  if (pid === null) return null;
  try {
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return environ.includes(`SWARM_WORKER_ID=${workerId}`) && cmdline.includes('worker-shim.js') ? pid : null;
  } catch {
    return null;
  }
}

/** @param {string | null | undefined} signal */
const signalCode = (signal) => (signal ? 128 + (os.constants.signals[/** @type {NodeJS.Signals} */ (signal)] ?? 0) : 0);

/** The exit code the shim left, so PM2 shows the worker's own. */
function recordedCode() {
  const e = readJson(path.join(dir, 'exit.json'));
  return e && Number.isInteger(e.exitCode) ? e.exitCode : signalCode(e?.signal);
}

/** @param {number} pid @param {NodeJS.Signals} sig */
function tell(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

// A fresh attempt has no pid.json yet (the sentry clears it at launch). One that has ran already: its shim
// is attached to if it still runs (pm2 resurrect after PM2 died), and never started twice (after a reboot,
// only the sentry decides what runs next).
const started = fs.existsSync(path.join(dir, 'pid.json'));
let shimPid = started ? liveShim() : null;
if (started && shimPid === null) process.exit(recordedCode());
if (shimPid === null) {
  // detached: a session of its own; stdio ignored: no pipe whose reader could die with PM2.
  const shim = spawn(process.execPath, [SHIM, specFile], { detached: true, stdio: 'ignore', env: process.env });
  shim.on('error', (err) => {
    process.stderr.write(`worker-anchor: cannot start the shim: ${err.message}\n`);
    process.exit(127);
  });
  shim.on('exit', (code, signal) => process.exit(code ?? signalCode(signal)));
  shimPid = shim.pid ?? null;
} else {
  // Not our child: followed by polling, and PM2 shows the code the shim recorded.
  const attached = shimPid;
  setInterval(() => {
    try {
      process.kill(attached, 0);
    } catch {
      process.exit(recordedCode());
    }
  }, POLL_MS);
}

// PM2's stop (pm2 stop, swarmctl down) reaches the shim, which ends the worker's group as it always has.
for (const sig of /** @type {NodeJS.Signals[]} */ (['SIGTERM', 'SIGINT']))
  process.on(sig, () => {
    if (shimPid !== null) tell(shimPid, 'SIGTERM');
  });
