import fs from 'node:fs';
import path from 'node:path';

/** The checkout's root, found from here whether this runs as source (lib/) or compiled (dist/lib/, or the CLI bundle). */
export const PACKAGE_ROOT = ((): string => {
  let dir = path.resolve(__dirname, '..');
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
