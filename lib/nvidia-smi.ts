import { spawnBounded } from './spawn-bounded';
import { XMLParser } from 'fast-xml-parser';

// One GPU reading from `nvidia-smi -q -x`, parsed with fast-xml-parser.
// Never throws: a missing, failing, hanging or babbling nvidia-smi gives
// { available: false, reason } so no daemon ever crashes on it.
//   - "N/A" (and the other not-a-value spellings) becomes null;
//   - GPU-level memory is the GPU's own <fb_memory_usage>, never a MIG
//     slice's (those sit under <mig_devices>);
//   - one pid may hold contexts on several GPUs, and is listed on each.

export interface GpuProcess {
  pid: number;
  name: string | null;
  usedMiB: number | null;
}

export interface GpuReading {
  index: number;
  uuid: string | null;
  name: string | null;
  utilPct: number | null;
  memUsedMiB: number | null;
  memTotalMiB: number | null;
  temperatureC: number | null;
  processes: GpuProcess[];
}

export type GpuProbe =
  | { available: true; driverVersion: string | null; gpus: GpuReading[] }
  /** `notInstalled`: the binary is not there at all, so there is no point asking again each tick. */
  | { available: false; gpus: []; reason: string; notInstalled?: boolean };

export class NvidiaSmiParseError extends Error {
  override name = 'NvidiaSmiParseError';
}

const NOT_A_VALUE = /^(N\/A|\[N\/A\]|\[Not Supported\]|Not Supported|\[Unknown Error\]|Unknown Error|None|)$/i;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => name === 'gpu' || name === 'process_info',
});

function text(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'object') {
    const t = (v as Record<string, unknown>)['#text'];
    return t === undefined ? null : text(t);
  }
  const s = String(v).trim();
  return NOT_A_VALUE.test(s) ? null : s;
}

/** "22 MiB", "65 %", "27 C", "3.5 W" -> the number; "N/A" -> null. */
function num(v: unknown): number | null {
  const s = text(v);
  if (s === null) return null;
  const m = /^-?\d+(\.\d+)?/.exec(s);
  return m ? Number(m[0]) : null;
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

export function parseNvidiaSmiXml(xml: string): { driverVersion: string | null; gpus: GpuReading[] } {
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(xml, true) as Record<string, unknown>;
  } catch (err) {
    throw new NvidiaSmiParseError(`not XML: ${(err as Error).message.split('\n')[0]}`);
  }
  const log = doc.nvidia_smi_log;
  if (!log || typeof log !== 'object') throw new NvidiaSmiParseError('no <nvidia_smi_log> element');
  const root = obj(log);
  const gpus = (Array.isArray(root.gpu) ? root.gpu : []).map((g: unknown, index: number): GpuReading => {
    const gpu = obj(g);
    const fb = obj(gpu.fb_memory_usage);
    const procs = obj(gpu.processes).process_info;
    return {
      index,
      uuid: text(gpu.uuid),
      name: text(gpu.product_name),
      utilPct: num(obj(gpu.utilization).gpu_util),
      memUsedMiB: num(fb.used),
      memTotalMiB: num(fb.total),
      temperatureC: num(obj(gpu.temperature).gpu_temp),
      processes: (Array.isArray(procs) ? procs : [])
        .map((p: unknown) => obj(p))
        .map((p) => ({ pid: num(p.pid), name: text(p.process_name), usedMiB: num(p.used_memory) }))
        .filter((p): p is GpuProcess => p.pid !== null),
    };
  });
  if (gpus.length === 0 && num(root.attached_gpus) !== 0) throw new NvidiaSmiParseError('no <gpu> element');
  return { driverVersion: text(root.driver_version), gpus };
}

export interface ProbeOptions {
  bin?: string;
  timeoutMs?: number;
  maxBytes?: number;
}

export function nvidiaSmiBin(env: NodeJS.ProcessEnv = process.env): string {
  return env.SWARM_NVIDIA_SMI || 'nvidia-smi';
}

/** Runs nvidia-smi (argv, no shell) under a timeout and a size cap, and parses what it printed. */
export async function probeGpus(opts: ProbeOptions = {}): Promise<GpuProbe> {
  const bin = opts.bin ?? nvidiaSmiBin();
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  const unavailable = (reason: string, notInstalled = false): GpuProbe => ({
    available: false,
    gpus: [],
    reason,
    ...(notInstalled ? { notInstalled } : {}),
  });
  const r = await spawnBounded([bin, '-q', '-x'], { timeoutMs, maxBytes, onOverflow: 'kill' }).result;
  switch (r.outcome) {
    case 'not-started':
      return r.error.code === 'ENOENT'
        ? unavailable(`${bin} not found: no NVIDIA driver here, or set SWARM_NVIDIA_SMI`, true)
        : unavailable(`${bin} could not run: ${r.error.message}`);
    case 'timed-out':
      return unavailable(`${bin} did not answer within ${timeoutMs}ms`);
    case 'too-big':
      return unavailable(`${bin} printed more than ${maxBytes} bytes`);
    case 'exited':
      if (r.exitCode !== 0)
        return unavailable(
          `${bin} failed (exit ${r.exitCode ?? r.signal}): ${r.stderr.trim().slice(0, 300) || 'no message'}`,
        );
      try {
        const parsed = parseNvidiaSmiXml(r.stdout.toString('utf8'));
        return { available: true, driverVersion: parsed.driverVersion, gpus: parsed.gpus };
      } catch (err) {
        return unavailable(`${bin} printed something that is not its XML report (${(err as Error).message})`);
      }
  }
}
