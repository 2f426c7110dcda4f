import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// PM2 keeps every app's environment, its logs and dump.pm2 in PM2_HOME, and
// makes that folder 0755 the moment its module is loaded. Imported ahead of
// pm2 (lib/process-manager.ts), this makes it first, 0700: its user's alone.
// A PM2_HOME that already exists is the user's to set.

export function pm2Home(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.PM2_HOME ?? path.join(env.HOME ?? os.homedir(), '.pm2'));
}

export function ensurePm2Home(env: NodeJS.ProcessEnv = process.env): string {
  const home = pm2Home(env);
  if (!fs.existsSync(home)) {
    fs.mkdirSync(home, { recursive: true, mode: 0o700 });
    fs.chmodSync(home, 0o700);
  }
  return home;
}

ensurePm2Home();
