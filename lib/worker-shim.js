// @ts-check
'use strict';
// Runs one worker, started by its anchor under PM2 (worker-anchor.js) or as a
// SLURM batch script. PM2 cannot tell a SIGKILL from exit 0 and its events
// carry no pid, so this shim owns the real child: it starts it in a process
// group of its own (argv, never a shell), keeps its output in a log file the
// sentry can read, and records the exact exit code and signal in exit.json
// before leaving. Its own stdout goes nowhere anyone reads (the anchor ignores
// it), so the worker's output is written to output.log only.
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { isSecretName } = require('../scripts/daemon-env.js');
const { rotate } = require('../scripts/rotate-files.js');

const specFile = process.argv[process.argv.length - 1];
if (!specFile || !specFile.endsWith('.json')) {
  process.stderr.write('worker-shim: expected the path of a spec.json as last argument\n');
  process.exit(2);
}
/** @type {{command: string[], cwd: string, env: Record<string,string>, secretEnvFile?: string | null, dir: string, stopGraceMs: number, logMaxBytes?: number, logKeep?: number, slurm?: boolean}} */
const spec = JSON.parse(fs.readFileSync(specFile, 'utf8'));
const logFile = path.join(spec.dir, 'output.log');
const logMax = spec.logMaxBytes ?? 64 * 1024 * 1024;
const logKeep = spec.logKeep ?? 3;

/** @param {string} file @param {unknown} value */
function writeJsonAtomic(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  const buf = Buffer.from(JSON.stringify(value));
  try {
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      for (let done = 0; done < buf.length;) done += fs.writeSync(fd, buf, done, buf.length - done);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

const RECORD_RETRY_MS = 1000;
/**
 * pid.json and exit.json are what the sentry knows the worker by: on a full disk they are tried again every
 * second until they are written, never given up, and the shim stays alive meanwhile (the sentry waits for
 * a live shim's record). How long it took is said in output.log once it is written.
 * @param {string} file @param {unknown} value @param {() => void} [then] @param {number} [failed]
 */
function writeRecord(file, value, then, failed = 0) {
  const pending = `${file}.pending`;
  try {
    writeJsonAtomic(file, value);
  } catch (err) {
    lastRecordError = /** @type {NodeJS.ErrnoException} */ (err).code ?? /** @type {Error} */ (err).message;
    // An empty file needs no data block: on most full disks it can still be made, and it tells a person (and
    // a test) that the record is waiting for room. If even that fails, the retry below still runs.
    if (failed === 0) {
      try {
        fs.closeSync(fs.openSync(pending, 'w', 0o600));
      } catch (markErr) {
        lastRecordError += `; no ${path.basename(pending)} either (${/** @type {Error} */ (markErr).message})`;
      }
    }
    setTimeout(() => writeRecord(file, value, then, failed + 1), RECORD_RETRY_MS);
    return;
  }
  if (failed > 0) {
    fs.rmSync(pending, { force: true });
    toLog(
      Buffer.from(`worker-shim: ${path.basename(file)} written after ${failed} failed tries (${lastRecordError})\n`),
    );
  }
  then?.();
}
let lastRecordError = '';

// PM2 adds its own variables; the worker gets a clean copy of what Swarm chose. As a SLURM batch script,
// the shim passes on what SLURM tells the job about itself (SLURM_JOB_ID, SLURMD_NODENAME…).
const env = { ...spec.env };
if (spec.slurm) {
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && (k.startsWith('SLURM_') || k === 'SLURMD_NODENAME') && !isSecretName(k)) env[k] = v;
}
/** What the shim itself has to say, for output.log once it is open (PM2's own log of a worker is /dev/null). */
/** @type {string[]} */
const notes = [];
// Secret values are not in spec.json: they come once, from a 0600 file that is gone as soon as it is read,
// so they sit on disk only between launch and start.
if (spec.secretEnvFile) {
  try {
    Object.assign(env, JSON.parse(fs.readFileSync(spec.secretEnvFile, 'utf8')));
  } catch (err) {
    // Unset rather than blank: a worker can tell a missing credential from an empty one.
    const missing = Object.keys(spec.env).filter(isSecretName);
    for (const k of missing) delete env[k];
    notes.push(
      `worker-shim: cannot read ${spec.secretEnvFile} (${/** @type {Error} */ (err).message}); starting without ${missing.join(', ')}\n`,
    );
  }
  try {
    fs.unlinkSync(spec.secretEnvFile);
  } catch {
    /* already gone: read by an earlier start */
  }
}
// Which SLURM job wrote a pid or exit file: a job the cluster gave up on (its node lost) may still be running
// there and write into the folder after its resubmission has started, and the sentry must not take its word.
const jobTag = spec.slurm ? { jobId: process.env.SLURM_JOB_ID ?? null } : {};
const [cmd, ...args] = spec.command;
if (!cmd) throw new Error('worker-shim: empty command');

// Never through a link planted at output.log: the worker could point it at any file of this user's.
const APPEND =
  fs.constants.O_WRONLY |
  fs.constants.O_APPEND |
  fs.constants.O_CREAT |
  fs.constants.O_NOFOLLOW |
  fs.constants.O_NONBLOCK;
let logFd = fs.openSync(logFile, APPEND, 0o600);
let logBytes = fs.fstatSync(logFd).size;
/** Output that could not be written (a full disk): counted, and said in the log once it can be written again. */
let lostBytes = 0;
let lostWhy = '';
// Through toLog too: a disk full at start must not stop the worker from starting.
for (const n of notes) toLog(Buffer.from(n));
/** @param {Buffer} chunk */
function toLog(chunk) {
  try {
    if (lostBytes > 0) {
      const note = `worker-shim: ${lostBytes} bytes of output lost (${lostWhy})\n`;
      logBytes += fs.writeSync(logFd, note);
      lostBytes = 0;
    }
    writeLog(chunk);
  } catch (err) {
    // The worker's output must never take the shim down: its exit record matters more than its log.
    lostBytes += chunk.length;
    lostWhy = /** @type {NodeJS.ErrnoException} */ (err).code ?? /** @type {Error} */ (err).message;
  }
}
/** @param {Buffer} chunk */
function writeLog(chunk) {
  if (logBytes >= logMax) {
    // The shim is the log's one writer, so it rotates between two writes and no line is lost.
    let failed = null;
    try {
      rotate(logFile, logKeep);
    } catch (err) {
      failed = /** @type {Error} */ (err).message;
    }
    fs.closeSync(logFd);
    logFd = fs.openSync(logFile, APPEND, 0o600);
    // A rotation that failed (a folder made read-only) is said in the log, and tried again after as many bytes more.
    logBytes = failed
      ? fs.writeSync(logFd, `worker-shim: cannot rotate ${logFile}: ${failed}\n`)
      : fs.fstatSync(logFd).size;
  }
  logBytes += fs.writeSync(logFd, chunk);
}

const child = spawn(cmd, args, { cwd: spec.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
child.on('error', (err) => {
  // Spawn failures (ENOENT, EACCES) are the worker's exit too: 127 as a shell would say.
  toLog(Buffer.from(`worker-shim: cannot start ${cmd}: ${err.message}\n`));
  writeRecord(
    path.join(spec.dir, 'exit.json'),
    {
      exitCode: 127,
      signal: null,
      endedAt: new Date().toISOString(),
      error: err.message,
      shimPid: process.pid,
      ...jobTag,
    },
    () => process.exit(127),
  );
});
if (child.pid) {
  writeRecord(path.join(spec.dir, 'pid.json'), {
    pid: child.pid,
    pgid: child.pid,
    shimPid: process.pid,
    startedAt: new Date().toISOString(),
    // On a SLURM node: where it runs. The head node never signals these pids; it asks SLURM.
    ...(spec.slurm ? { node: require('node:os').hostname() } : {}),
    ...jobTag,
  });
}
child.stdout?.on('data', toLog);
child.stderr?.on('data', toLog);

let stopping = false;
/** @param {NodeJS.Signals} sig */
function signalChild(sig) {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    /* group already gone */
  }
}
function stop() {
  if (stopping) return;
  stopping = true;
  signalChild('SIGTERM');
  signalChild('SIGCONT');
  setTimeout(() => signalChild('SIGKILL'), spec.stopGraceMs).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

child.on('exit', (code, signal) => {
  let finished = false;
  const done = () => {
    if (finished) return;
    finished = true;
    const record = {
      exitCode: code,
      signal,
      endedAt: new Date().toISOString(),
      stoppedBySwarm: stopping,
      shimPid: process.pid,
      pid: child.pid,
      ...jobTag,
    };
    writeRecord(path.join(spec.dir, 'exit.json'), record, () => {
      fs.closeSync(logFd);
      process.exit(code ?? 128 + (signal ? (require('node:os').constants.signals[signal] ?? 0) : 0));
    });
  };
  // Let the pipes drain so the last lines (a traceback) reach the log.
  let open = 2;
  const close = () => {
    open -= 1;
    if (open === 0) done();
  };
  if (child.stdout && !child.stdout.readableEnded) child.stdout.once('close', close);
  else close();
  if (child.stderr && !child.stderr.readableEnded) child.stderr.once('close', close);
  else close();
  setTimeout(done, 2000).unref();
});
