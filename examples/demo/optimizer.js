#!/usr/bin/env node
// @ts-check
'use strict';
// An optimizer-like demo worker. It runs trials, and after each one writes its
// progress and its best result so far, atomically, into its checkpoint folder;
// after a restart it resumes from there. Flags inject the faults Swarm heals.
//
//   --task ID            task name (for the log)
//   --trials N           trials to run, then exit 0 (default 40)
//   --trial-ms MS        time per trial (default 400)
//   --crash-at K         exit 1 at trial K
//   --segv-at K          SIGSEGV itself at trial K
//   --hang-at K          stop making progress at trial K (sleeps, keeps printing nothing)
//   --leak-mb N          allocate and keep N MiB per trial
//   --slow-start-ms MS   wait this long before the first trial
//   --syntax-error       die as a broken import would, at start
//   --op-deadline-ms MS  declare each trial as an operation with this deadline in the progress file
//   --flat               report the same metric every trial (a plateau)
//   --fault-attempts N   inject faults only while SWARM_ATTEMPT <= N (default 1; 0 = always)
//   --bad-progress       write a progress field Swarm cannot use (total as text)
const fs = require('node:fs');
const path = require('node:path');

/** @param {string} name @param {string | undefined} [fallback] */
function flag(name, fallback) {
  // The last occurrence wins, so task args override the job's defaults.
  const i = process.argv.lastIndexOf(`--${name}`);
  if (i === -1) return fallback;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? 'true' : v;
}
const num = (/** @type {string} */ name, /** @type {number} */ d) => Number(flag(name, String(d)));

const task = flag('task', process.env.SWARM_TASK_ID || 'demo');
const trials = num('trials', 40);
const trialMs = num('trial-ms', 400);
const attempt = Number(process.env.SWARM_ATTEMPT || '1');
const faultAttempts = num('fault-attempts', 1);
const faulty = faultAttempts === 0 || attempt <= faultAttempts;
const ckpt = process.env.SWARM_CHECKPOINT_DIR || path.join(process.cwd(), 'checkpoint');
const progressFile = process.env.SWARM_PROGRESS_FILE || path.join(ckpt, 'progress.json');
fs.mkdirSync(ckpt, { recursive: true });

let skipped = 0;
/**
 * A checkpoint that cannot be written for a full disk is skipped, not fatal:
 * the last whole one stays, and the next trial tries again. Hours of work
 * should not end on a disk that fills for a minute.
 * @param {string} file @param {unknown} value
 */
function writeAtomic(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(value));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    if (skipped > 0) console.log(`checkpoints written again after ${skipped} skipped for a full disk`);
    skipped = 0;
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOSPC') throw err;
    fs.rmSync(tmp, { force: true });
    skipped += 1;
  }
}

// Our own count of starts, so a soak can check that no launch went unrecorded.
fs.appendFileSync(path.join(ckpt, 'starts.log'), `${process.pid} ${attempt}\n`);

/** @type {{trial: number, best: number | null, completed: number[]}} */
let state = { trial: 0, best: null, completed: [] };
try {
  state = JSON.parse(fs.readFileSync(path.join(ckpt, 'state.json'), 'utf8'));
  console.log(`resuming ${task} from trial ${state.trial} (attempt ${attempt})`);
} catch {
  console.log(`starting ${task} fresh (attempt ${attempt})`);
}

if (faulty && flag('syntax-error')) {
  console.error("SyntaxError: Unexpected token '}' in strategy.js:12");
  process.exit(1);
}

const leak = [];
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  await sleep(faulty ? num('slow-start-ms', 0) : 0);
  console.log(`optimizer ready: ${task}, ${trials} trials`);
  while (state.trial < trials) {
    const k = state.trial + 1;
    const opMs = num('op-deadline-ms', 0);
    if (opMs > 0) {
      // Tell hang-guard what we are doing and by when it must be done.
      writeAtomic(progressFile, {
        updatedAt: new Date().toISOString(),
        iteration: state.trial,
        operation: { name: `trial ${k}`, deadline: new Date(Date.now() + opMs).toISOString() },
      });
    }
    if (faulty && num('hang-at', -1) === k) {
      console.log(`trial ${k} hangs (injected)`);
      // A hang that does not die: no progress, no output, for ever.
      await new Promise(() => setInterval(() => {}, 1 << 30));
    }
    if (faulty && num('crash-at', -1) === k) {
      console.error(`trial ${k}: injected crash`);
      process.exit(1);
    }
    if (faulty && num('segv-at', -1) === k) process.kill(process.pid, 'SIGSEGV');
    if (faulty && num('leak-mb', 0) > 0) leak.push(Buffer.alloc(num('leak-mb', 0) * 1048576, 1));
    await sleep(trialMs);
    const value = flag('flat') ? 1 : Math.sin(k * 1.7) * 10 + k / 10;
    state.trial = k;
    state.completed.push(k);
    if (state.best === null || value > state.best) {
      state.best = value;
      writeAtomic(path.join(ckpt, 'best.json'), { task, trial: k, value, updatedAt: new Date().toISOString() });
    }
    writeAtomic(path.join(ckpt, 'state.json'), state);
    const total = flag('bad-progress', 'false') === 'true' ? 'lots' : trials;
    writeAtomic(progressFile, {
      updatedAt: new Date().toISOString(),
      iteration: k,
      total,
      metric: value,
      best: state.best,
      status: 'in_progress',
    });
    console.log(`trial ${k} value=${value.toFixed(3)} best=${state.best.toFixed(3)}`);
  }
  console.log(`done ${task}: best=${state.best}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
