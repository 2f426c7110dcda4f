import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseNvidiaSmiXml, probeGpus } from '../lib/nvidia-smi';
import { FIXTURES, fakeNvidiaSmi } from './helpers/fake-smi';
import { SWARMCTL } from './helpers/swarm';
import { tmpDir } from './helpers/tmp';

// The GPU reader against every real sample. Expected values are derived here
// from the XML with plain regular expressions, independently of the parser.

const files = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.xml'))
  .sort();

function numOf(block: string, tag: string): number | null {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(block);
  if (!m || /N\/A|Not Supported/.test(m[1] ?? '')) return null;
  const n = /-?\d+(\.\d+)?/.exec(m[1] ?? '');
  return n ? Number(n[0]) : null;
}

function expected(xml: string) {
  const gpus = [...xml.matchAll(/<gpu id="[^"]*">([\s\S]*?)\n\s*<\/gpu>/g)].map((m, index) => {
    const g = (m[1] ?? '').replace(/<mig_devices>[\s\S]*?<\/mig_devices>/g, '');
    const fb = /<fb_memory_usage>([\s\S]*?)<\/fb_memory_usage>/.exec(g)?.[1] ?? '';
    const procs = [...g.matchAll(/<process_info>([\s\S]*?)<\/process_info>/g)].map((p) => ({
      pid: numOf(p[1] ?? '', 'pid'),
      name: /<process_name>([^<]*)<\/process_name>/.exec(p[1] ?? '')?.[1] ?? null,
      usedMiB: numOf(p[1] ?? '', 'used_memory'),
    }));
    return {
      index,
      uuid: /<uuid>([^<]*)<\/uuid>/.exec(g)?.[1] ?? null,
      name: /<product_name>([^<]*)<\/product_name>/.exec(g)?.[1] ?? null,
      utilPct: numOf(/<utilization>([\s\S]*?)<\/utilization>/.exec(g)?.[1] ?? '', 'gpu_util'),
      memUsedMiB: numOf(fb, 'used'),
      memTotalMiB: numOf(fb, 'total'),
      temperatureC: numOf(/<temperature>([\s\S]*?)<\/temperature>/.exec(g)?.[1] ?? '', 'gpu_temp'),
      processes: procs,
    };
  });
  return { driverVersion: /<driver_version>([^<]*)<\/driver_version>/.exec(xml)?.[1] ?? null, gpus };
}

describe('nvidia-smi reader', () => {
  it('has the samples', () => {
    expect(files.length).toBeGreaterThanOrEqual(13);
  });

  for (const f of files) {
    it(`agrees with the XML of ${f}`, () => {
      const xml = fs.readFileSync(path.join(FIXTURES, f), 'utf8');
      const got = parseNvidiaSmiXml(xml);
      expect(got).toEqual(expected(xml));
      expect(got.gpus.length).toBeGreaterThan(0);
    });
  }

  it('by hand: a10g, rtx-3080-v12, dual_2070-v13', () => {
    const a10g = parseNvidiaSmiXml(fs.readFileSync(path.join(FIXTURES, 'a10g.xml'), 'utf8'));
    expect(a10g).toEqual({
      driverVersion: '515.105.01',
      gpus: [
        {
          index: 0,
          uuid: 'GPU-9a9a6c50-2a47-2f51-a902-b82c3b127e94',
          name: 'NVIDIA A10G',
          utilPct: 0,
          memUsedMiB: 22,
          memTotalMiB: 23028,
          temperatureC: 17,
          processes: [{ pid: 725, name: '/usr/lib/xorg/Xorg', usedMiB: 22 }],
        },
      ],
    });
    const r3080 = parseNvidiaSmiXml(fs.readFileSync(path.join(FIXTURES, 'rtx-3080-v12.xml'), 'utf8'));
    expect(r3080.gpus[0]).toMatchObject({ memUsedMiB: 1128, memTotalMiB: 10240, temperatureC: 31 });
    expect(r3080.gpus[0]?.processes).toHaveLength(5);
    const dual = parseNvidiaSmiXml(fs.readFileSync(path.join(FIXTURES, 'dual_2070-v13.xml'), 'utf8'));
    expect(dual.gpus.map((g) => g.index)).toEqual([0, 1]);
    expect(dual.driverVersion).toBe('590.44.01');
  });

  it('GPU-level memory is never a MIG slice', () => {
    const xml = fs
      .readFileSync(path.join(FIXTURES, 'a10g.xml'), 'utf8')
      .replace(
        /<mig_devices>[\s\S]*?<\/mig_devices>/,
        '<mig_devices><mig_device><index>0</index><fb_memory_usage><total>9999 MiB</total><used>7777 MiB</used><free>2222 MiB</free></fb_memory_usage></mig_device></mig_devices>',
      );
    expect(parseNvidiaSmiXml(xml).gpus[0]).toMatchObject({ memUsedMiB: 22, memTotalMiB: 23028 });
  });

  it('one pid on several GPUs is listed on each', () => {
    const xml = fs
      .readFileSync(path.join(FIXTURES, 'dual_2070-v13.xml'), 'utf8')
      .replace(
        /<processes>[\s\S]*?<\/processes>|<processes\s*\/>/g,
        '<processes><process_info><pid>4242</pid><process_name>python</process_name><used_memory>100 MiB</used_memory></process_info></processes>',
      );
    const r = parseNvidiaSmiXml(xml);
    expect(r.gpus.map((g) => g.processes.map((p) => p.pid))).toEqual([[4242], [4242]]);
  });

  it('missing, failing, hanging, garbage or truncated nvidia-smi: available false with a reason', async () => {
    const dir = tmpDir();
    const smi = fakeNvidiaSmi(dir, { mode: 'ok', fixture: 'tesla-t4.xml' });
    const ok = await probeGpus({ bin: smi.bin });
    expect(ok).toMatchObject({ available: true, driverVersion: '515.105.01' });
    expect(await probeGpus({ bin: path.join(dir, 'nope') })).toMatchObject({
      available: false,
      notInstalled: true,
      reason: expect.stringMatching(/not found/),
    });
    smi.set({ mode: 'fail' });
    expect(await probeGpus({ bin: smi.bin })).toMatchObject({
      available: false,
      reason: expect.stringMatching(/exit 9.*NVIDIA driver/),
    });
    smi.set({ mode: 'garbage' });
    expect(await probeGpus({ bin: smi.bin })).toMatchObject({
      available: false,
      reason: expect.stringMatching(/not its XML/),
    });
    smi.set({ mode: 'truncated', fixture: 'tesla-t4.xml' });
    expect(await probeGpus({ bin: smi.bin })).toMatchObject({ available: false, gpus: [] });
    smi.set({ mode: 'hang' });
    expect(await probeGpus({ bin: smi.bin, timeoutMs: 500 })).toMatchObject({
      available: false,
      reason: expect.stringMatching(/did not answer within 500ms/),
    });
  });

  it('swarmctl probe gpu --json prints the shape docs/cli.md gives, and exits 0 either way', () => {
    const dir = tmpDir();
    const smi = fakeNvidiaSmi(dir, { fixture: 'a10g.xml', pids: { '0': [process.pid] } });
    // nvidia-smi names a process by its command line.
    const name = fs.readFileSync(`/proc/${process.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    const cfg = path.join(dir, 'c.json');
    fs.writeFileSync(cfg, JSON.stringify({ name: 'g', stateDir: 'state', jobs: { j: { command: ['true'] } } }));
    const run = () =>
      spawnSync(SWARMCTL, ['probe', 'gpu', '--json', '--config', cfg], {
        encoding: 'utf8',
        env: { ...process.env, SWARM_NVIDIA_SMI: smi.bin },
      });
    const r = run();
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      schemaVersion: 1,
      available: true,
      driverVersion: '515.105.01',
      gpus: [
        {
          index: 0,
          uuid: 'GPU-9a9a6c50-2a47-2f51-a902-b82c3b127e94',
          name: 'NVIDIA A10G',
          utilPct: 0,
          memUsedMiB: 22,
          memTotalMiB: 23028,
          temperatureC: 17,
          processes: [{ pid: process.pid, name, usedMiB: 512 }],
        },
      ],
    });
    smi.set({ mode: 'garbage' });
    const bad = run();
    expect(bad.status).toBe(0);
    expect(JSON.parse(bad.stdout)).toEqual({
      schemaVersion: 1,
      available: false,
      gpus: [],
      reason: expect.any(String),
    });
  });
});
