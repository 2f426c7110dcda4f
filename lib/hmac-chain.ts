import fs from 'node:fs';
import { createHmac } from 'node:crypto';
import { openRegular } from './safe-file';

// The keyed chain beside the hash chain: each event's mac is
// HMAC-SHA256(key, previous mac + "\n" + its hash). The hash chain can be
// recomputed by anyone who can write swarm.db; this one only by someone who
// holds the key, which lives outside the state folder, 0600. Rows from
// before the key was configured have no mac; from the first row that has
// one, every later row must.

export const MIN_KEY_BYTES = 32;

/** Why the key cannot be used; the file and what to do are named. */
export class HmacKeyError extends Error {
  override name = 'HmacKeyError';
}

export function loadHmacKey(file: string | null): Buffer | null {
  if (file === null) return null;
  let fd: number;
  try {
    fd = openRegular(file, fs.constants.O_RDONLY);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new HmacKeyError(
      `history.hmacKeyFile ${file}: ${missing ? `does not exist; make one: head -c 32 /dev/urandom > ${file} && chmod 600 ${file}` : (err as Error).message}`,
    );
  }
  try {
    const st = fs.fstatSync(fd);
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0)
      throw new HmacKeyError(
        `history.hmacKeyFile ${file} is mode ${mode.toString(8)}: it must be its owner's alone (chmod 600 ${file})`,
      );
    if (st.size < MIN_KEY_BYTES || st.size > 64 * 1024)
      throw new HmacKeyError(`history.hmacKeyFile ${file} holds ${st.size} bytes; it needs ${MIN_KEY_BYTES} to 65536`);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function macRow(key: Buffer, prevMac: string | null, hash: string): string {
  return createHmac('sha256', key)
    .update(`${prevMac ?? ''}\n${hash}`)
    .digest('hex');
}
