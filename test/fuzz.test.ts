import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig, loadConfig } from '../lib/config/config';
import { parseBytes, parseDurationMs } from '../lib/duration';
import { ConfigError } from '../lib/errors';
import { findOverrun } from '../lib/hang-guard/hang-guard';
import { NvidiaSmiParseError, parseNvidiaSmiXml } from '../lib/nvidia-smi';
import { DaemonHeaderSchema } from '../lib/state-files';
import { readStateFile } from '../lib/state-store';
import { classifyExit } from '../lib/sentry/classify';
import { readProgress, scanForMarker } from '../lib/worker/read';
import { newWorkerRecord } from '../lib/worker/record';
import { ROOT } from './helpers/swarm';
import { tmpDir } from './helpers/tmp';
import { seeded } from './helpers/seeded';

// Seeded mutation fuzzing over the same readers the corpus covers: valid
// inputs (the demo config, the real nvidia-smi samples, a progress file, a
// state file) are cut, flipped and restructured at random, and each reader
// must either accept the result or refuse it with its own named error. Never
// a TypeError, never a hang. A failure prints its seed and case; run it
// again with SWARM_FUZZ_SEED=<seed>, and longer with SWARM_FUZZ_RUNS=<n>.

const SEED = Number(process.env.SWARM_FUZZ_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.SWARM_FUZZ_RUNS ?? 150);
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'nvidia-smi');

class Fuzzer {
  private readonly r: () => number;
  constructor(readonly seed: number) {
    this.r = seeded(seed);
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  chance(p: number): boolean {
    return this.r() < p;
  }

  /** Values that have broken parsers before: wrong types, edges of number ranges, hostile strings. */
  value(depth = 0): unknown {
    const strings = [
      '',
      ' ',
      '0',
      '-1',
      '1e309',
      'NaN',
      '5',
      '5s',
      '-5s',
      '1.5.5m',
      '10X',
      '99999999999999999999h',
      '../../etc/passwd',
      '$(rm -rf /)',
      '`id`',
      '; ls',
      '${taskId}',
      '${nope}',
      'ℌ𝔢𝔩𝔩𝔬 🐝',
      '\u0000',
      '\n\r\t',
      'a'.repeat(5000),
      '/(a+)+/',
      'gpu',
      'cpu',
      'restart',
      '1G',
      '512M',
    ];
    const numbers = [0, -1, 1, 0.5, 1e308, -1e308, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 3.14159];
    switch (this.int(depth > 2 ? 5 : 7)) {
      case 0:
        return this.pick(strings);
      case 1:
        return this.pick(numbers);
      case 2:
        return this.chance(0.5);
      case 3:
        return null;
      case 4:
        return this.pick(strings) + this.pick(strings);
      case 5:
        return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
      default:
        return Object.fromEntries(
          Array.from({ length: this.int(4) }, () => [
            this.pick(['x', 'command', 'kind', 'slots', 'tick', '__proto__', 'constructor']),
            this.value(depth + 1),
          ]),
        );
    }
  }

  /** Replaces, deletes or adds one node somewhere in a JSON document. */
  mutateJson(doc: unknown): unknown {
    const copy = JSON.parse(JSON.stringify(doc)) as unknown;
    const containers: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v))
        v.forEach((x, i) => {
          containers.push({ parent: v, key: i });
          walk(x);
        });
      else if (v && typeof v === 'object')
        for (const [k, x] of Object.entries(v)) {
          containers.push({ parent: v as Record<string, unknown>, key: k });
          walk(x);
        }
    };
    walk(copy);
    const n = 1 + this.int(3);
    for (let i = 0; i < n && containers.length; i++) {
      const { parent, key } = this.pick(containers);
      const op = this.int(3);
      if (op === 0) (parent as Record<string | number, unknown>)[key] = this.value();
      else if (op === 1 && !Array.isArray(parent)) delete parent[key as string];
      else if (op === 1) (parent as unknown[]).splice(key as number, 1);
      else if (!Array.isArray(parent)) parent[`${String(key)}_${this.int(9)}`] = this.value();
    }
    return copy;
  }

  /** Cuts, flips, duplicates or splices bytes of a text. */
  mutateText(text: string): string {
    let t = text;
    const n = 1 + this.int(4);
    for (let i = 0; i < n; i++) {
      const at = this.int(t.length + 1);
      switch (this.int(6)) {
        case 0:
          t = t.slice(0, at);
          break;
        case 1:
          t = t.slice(0, at) + String.fromCharCode(this.int(0x3000)) + t.slice(at + 1);
          break;
        case 2:
          t = t.slice(0, at) + t.slice(at, at + this.int(200)).repeat(1 + this.int(4)) + t.slice(at);
          break;
        case 3:
          t = t.slice(0, at) + t.slice(at + this.int(400));
          break;
        case 4:
          t =
            t.slice(0, at) +
            this.pick([
              '<',
              '>',
              '&',
              '&amp;',
              '&#0;',
              '&bogus;',
              ']]>',
              '<![CDATA[',
              '</gpu>',
              '<gpu>',
              '"',
              '\u0000',
            ]) +
            t.slice(at);
          break;
        default:
          t = t.slice(0, at) + t.slice(this.int(t.length + 1));
          break;
      }
    }
    return t;
  }
}

/** Runs `body` for each case; a failure names the seed and the case so it can be replayed. */
function cases(name: string, body: (f: Fuzzer, i: number) => void): void {
  const f = new Fuzzer(SEED);
  for (let i = 0; i < RUNS; i++) {
    try {
      body(f, i);
    } catch (err) {
      throw new Error(`${name}: case ${i} failed (SWARM_FUZZ_SEED=${SEED}): ${(err as Error).stack ?? String(err)}`);
    }
  }
}

const finiteOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));

describe(`fuzzing (seed ${SEED}, ${RUNS} cases each)`, () => {
  const demo = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', 'demo', 'swarm.config.json'), 'utf8')) as unknown;
  const demoFile = path.join(ROOT, 'examples', 'demo', 'swarm.config.json');

  it('configs, restructured: compiled, or refused with a ConfigError naming a path', () => {
    cases('config', (f) => {
      const raw = f.mutateJson(demo);
      try {
        const c = compileConfig(raw, demoFile, {});
        // What is accepted is usable: positive finite timings, absolute folders, argv arrays.
        expect(c.tickMs).toBeGreaterThan(0);
        expect(Number.isFinite(c.tickMs)).toBe(true);
        expect(path.isAbsolute(c.stateDir)).toBe(true);
        for (const j of Object.values(c.jobs)) {
          expect(j.command.length).toBeGreaterThan(0);
          expect(j.command.every((a) => typeof a === 'string')).toBe(true);
        }
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        expect(err.issues.length).toBeGreaterThan(0);
        expect(err.message).toContain(demoFile);
        for (const issue of err.issues) expect(typeof issue.path).toBe('string');
      }
    });
  });

  it('config files, cut and flipped as text: compiled, or refused with a ConfigError', () => {
    const dir = tmpDir();
    const text = fs.readFileSync(demoFile, 'utf8');
    cases('config text', (f, i) => {
      const file = path.join(dir, `c${i}.json`);
      fs.writeFileSync(file, f.mutateText(text));
      try {
        loadConfig(file, {});
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        expect(err.message).toContain(file);
      }
    });
  });

  it('durations and sizes: a number of ms or bytes, or null; never NaN or a throw', () => {
    cases('durations', (f) => {
      const v = f.chance(0.5)
        ? f.mutateText(f.pick(['5s', '1.5m', '2h', '250ms', '1d', '512M', '2G', '100k']))
        : f.value();
      if (typeof v !== 'string' && typeof v !== 'number') return;
      for (const parsed of [parseDurationMs(v), parseBytes(v)]) {
        expect(finiteOrNull(parsed)).toBe(true);
        if (parsed !== null) expect(parsed).toBeGreaterThanOrEqual(0);
      }
    });
  });

  it('nvidia-smi XML from the real samples, damaged: a reading with numbers or null, or an NvidiaSmiParseError', () => {
    const samples = fs
      .readdirSync(FIXTURES)
      .filter((x) => x.endsWith('.xml'))
      .map((x) => fs.readFileSync(path.join(FIXTURES, x), 'utf8'));
    cases('nvidia-smi', (f) => {
      const xml = f.mutateText(f.pick(samples));
      let out: ReturnType<typeof parseNvidiaSmiXml>;
      try {
        out = parseNvidiaSmiXml(xml);
      } catch (err) {
        if (!(err instanceof NvidiaSmiParseError)) throw err;
        return;
      }
      for (const g of out.gpus) {
        for (const v of [g.utilPct, g.memUsedMiB, g.memTotalMiB, g.temperatureC]) expect(finiteOrNull(v)).toBe(true);
        for (const p of g.processes) expect(Number.isFinite(p.pid)).toBe(true);
      }
    });
  });

  it('progress files, damaged or random bytes: a reading or null; the hang-guard deadline check never throws', () => {
    const dir = tmpDir();
    const good = JSON.stringify({
      updatedAt: new Date().toISOString(),
      trial: 12,
      metric: 0.5,
      operation: { name: 'load', deadline: '30s' },
    });
    cases('progress', (f, i) => {
      const file = path.join(dir, `p${i}.json`);
      const body = f.chance(0.2)
        ? Buffer.from(Array.from({ length: f.int(2000) }, () => f.int(256)))
        : f.chance(0.5)
          ? f.mutateText(good)
          : JSON.stringify(f.mutateJson(JSON.parse(good)));
      fs.writeFileSync(file, body);
      const r = readProgress(file);
      expect(r === null || typeof r.marker === 'string').toBe(true);
      const w = {
        ...newWorkerRecord({ id: 'w', job: 'j', taskId: 't', slot: null, lane: 'cpu' }),
        launchedAt: Date.now(),
      };
      findOverrun(w, null, r?.json ?? null, Date.now());
    });
  });

  it('state files, damaged: read as ok or as corrupt, never a throw', () => {
    const dir = tmpDir();
    const good = JSON.stringify({
      daemon: 'watchdog',
      pid: 1,
      runId: 'r-1',
      lifecycle: 'running',
      startedAt: new Date().toISOString(),
      lastTickAt: null,
      tickMs: 1000,
      ticks: 1,
      restarts: 0,
    });
    cases('state', (f, i) => {
      const file = path.join(dir, `s${i}.json`);
      fs.writeFileSync(file, f.chance(0.5) ? f.mutateText(good) : JSON.stringify(f.mutateJson(JSON.parse(good))));
      const r = readStateFile(file, DaemonHeaderSchema);
      if (!r.ok) expect(r.error.reason).toBe('corrupt');
    });
  });

  it('worker logs, random text: the startup scan and the exit classifier answer, never throw', () => {
    const dir = tmpDir();
    const lines = [
      'optimizer ready',
      'Traceback (most recent call last):',
      "ModuleNotFoundError: No module named 'x'",
      'database is locked',
      'Conflicting lock is held in /x.db (PID 12)',
      'CUDA out of memory',
      'JavaScript heap out of memory',
      '(PID abc)',
      'ready',
    ];
    cases('logs', (f, i) => {
      const text = Array.from({ length: f.int(30) }, () =>
        f.chance(0.5) ? f.mutateText(f.pick(lines)) : String(f.value()),
      ).join(f.pick(['\n', '\r\n', '']));
      const file = path.join(dir, `l${i}.log`);
      fs.writeFileSync(file, text);
      const scan = scanForMarker(file, f.int(text.length + 10), 'optimizer ready');
      expect(scan.offset).toBeGreaterThanOrEqual(0);
      const c = classifyExit([], {
        exitCode: f.pick([0, 1, 137, null]),
        signal: f.pick([null, 'SIGKILL', 'SIGSEGV']),
        logTail: text,
        lastRssBytes: null,
        memoryLimitBytes: null,
        kernelOomKilled: false,
      });
      expect(typeof c.class).toBe('string');
    });
  });
});
