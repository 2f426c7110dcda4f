import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './swarm';

export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'nvidia-smi');

export interface FakeSmiConfig {
  fixture?: string;
  mode?: 'ok' | 'hang' | 'garbage' | 'fail' | 'truncated';
  pids?: Record<string, number[]>;
  /** Per GPU index, pid.json files whose pid is listed, read at each run: a worker on its GPU from its first moment. */
  pidFiles?: Record<string, string[]>;
}

/** Writes an executable `nvidia-smi` into dir, configured by a JSON file that can be changed while it is in use. */
export function fakeNvidiaSmi(dir: string, cfg: FakeSmiConfig): { bin: string; set: (cfg: FakeSmiConfig) => void } {
  const conf = path.join(dir, 'fake-smi.json');
  const bin = path.join(dir, 'nvidia-smi');
  const set = (c: FakeSmiConfig) => fs.writeFileSync(conf, JSON.stringify({ fixtureDir: FIXTURES, ...c }));
  set(cfg);
  fs.writeFileSync(
    bin,
    `#!${process.execPath}\nprocess.env.FAKE_SMI_CONFIG = ${JSON.stringify(conf)};\nrequire(${JSON.stringify(path.join(ROOT, 'test', 'fixtures', 'fake-nvidia-smi.js'))});\n`,
    { mode: 0o755 },
  );
  return { bin, set };
}
