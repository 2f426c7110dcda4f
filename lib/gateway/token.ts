import crypto from 'node:crypto';
import path from 'node:path';
import { ensureDir, writeFileAtomic } from '../atomic-file';
import { readRegular } from '../safe-file';

// The dashboard's token, as Jupyter's: made fresh by each `swarmctl up`
// (or by operator-gateway when it starts without one), kept 0600 in the
// state folder, printed by `up` and `swarmctl dashboard`. Every write needs
// it; on an address other than loopback every read does too.

export const TOKEN_FILE = 'dashboard_token';

export function newToken(stateDir: string): string {
  const token = crypto.randomBytes(24).toString('hex');
  ensureDir(stateDir);
  writeFileAtomic(path.join(stateDir, TOKEN_FILE), `${token}\n`);
  return token;
}

export function readToken(stateDir: string): string | null {
  const t = readRegular(path.join(stateDir, TOKEN_FILE), 256)?.trim() ?? '';
  return /^[0-9a-f]{48}$/.test(t) ? t : null;
}

/** Compared in constant time: the token is a password. */
export function tokenMatches(given: string | null, token: string | null): boolean {
  if (given === null || token === null || given.length !== token.length) return false;
  return crypto.timingSafeEqual(Buffer.from(given), Buffer.from(token));
}
