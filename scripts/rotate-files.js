// @ts-check
'use strict';
// Rotation by generations, as logrotate's `rotate N`: FILE becomes FILE.1,
// FILE.1 becomes FILE.2, and so on, FILE.N is deleted. Plain CommonJS,
// because the worker shim (which writes each worker's output.log) needs it as
// well as the daemons. rename and unlink act on names, never through a link.
const fs = require('node:fs');

/** @param {unknown} err */
function missing(err) {
  return /** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT';
}

/**
 * @param {string} file
 * @param {number} keep generations kept besides FILE (at least 1)
 */
function rotate(file, keep) {
  const n = Math.max(1, Math.floor(keep));
  try {
    fs.unlinkSync(`${file}.${n}`);
  } catch (err) {
    if (!missing(err)) throw err;
  }
  for (let i = n - 1; i >= 1; i--) {
    try {
      fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    } catch (err) {
      if (!missing(err)) throw err;
    }
  }
  fs.renameSync(file, `${file}.1`);
}

module.exports = { rotate };
