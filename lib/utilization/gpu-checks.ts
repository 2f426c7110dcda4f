import path from 'node:path';
import type { GpuProcess, GpuReading } from '../nvidia-smi';
import { processTree, readCmdline } from '../proc';
import type { WorkerRecord } from '../worker/record';

// Work on the wrong device ruins a run for hours:
//   gpu_fallback            — a GPU-lane worker holds no context on its GPUs
//                             once its grace period has passed (it fell back to the CPU);
//   unexpected_gpu_context  — a CPU-lane worker holds a GPU context.
// A worker counts by its whole process tree: a launcher's child may be the one on the GPU.
//
// A pid in nvidia-smi's list is only a number. It names a worker's process
// only while that process is the one nvidia-smi saw, so its name must agree
// with the command line that pid has now. Without that check, a GPU process
// that exits between the reading and the check, and whose pid the kernel
// hands to a worker's child (pid_max is 32768 on many machines), or a host
// pid listed inside a container's own pid namespace, would put a CPU worker
// on a GPU it never touched. An hour-long soak raised one such false
// unexpected_gpu_context: a steady worker had been given a pid that the
// recorded nvidia-smi sample lists for another machine's process.

export interface GpuFinding {
  class: 'gpu_fallback' | 'unexpected_gpu_context';
  workerId: string;
  message: string;
  evidence: Record<string, unknown>;
}

export interface GpuCheckProbes {
  tree: (pid: number) => number[];
  /** The pid's command line now, its arguments joined by spaces; null when it is gone. */
  cmdline: (pid: number) => string | null;
}

const LIVE_PROBES: GpuCheckProbes = { tree: processTree, cmdline: readCmdline };

/**
 * Whether nvidia-smi's process is the one that holds its pid now. NVML names
 * a process by its command line, cut at some length, so one may be a prefix
 * of the other; a name nvidia-smi could not give is taken on the pid alone.
 */
export function sameProcess(listed: GpuProcess, cmdline: string | null): boolean {
  if (cmdline === null) return false;
  const name = listed.name?.trim() ?? '';
  if (name === '') return true;
  if (cmdline.startsWith(name) || name.startsWith(cmdline)) return true;
  const exe = (s: string) => path.basename(s.split(' ')[0] ?? '');
  return exe(name) === exe(cmdline);
}

export function checkGpuBinding(
  w: WorkerRecord,
  laneKind: 'cpu' | 'gpu' | 'slurm',
  gpus: GpuReading[],
  now: number,
  graceMs: number,
  probes: GpuCheckProbes = LIVE_PROBES,
): GpuFinding | null {
  if (w.pid === null || w.launchedAt === null) return null;
  const pids = new Set(probes.tree(w.pid));
  const ours = (p: GpuProcess) => pids.has(p.pid) && sameProcess(p, probes.cmdline(p.pid));
  const holding = gpus.filter((g) => g.processes.some(ours)).map((g) => g.index);
  if (laneKind === 'gpu') {
    if (now - w.launchedAt < graceMs) return null;
    const own = w.gpus.filter((i) => holding.includes(i));
    if (own.length > 0) return null;
    return {
      class: 'gpu_fallback',
      workerId: w.id,
      message: `no process of ${w.id} on its GPU ${w.gpus.join(',')} after ${Math.round(graceMs / 1000)}s: it is running on the CPU`,
      evidence: { assignedGpus: w.gpus, holdingGpus: holding, pids: [...pids] },
    };
  }
  if (holding.length === 0) return null;
  const named = gpus.flatMap((g) => g.processes.filter(ours).map((p) => ({ gpu: g.index, pid: p.pid, name: p.name })));
  return {
    class: 'unexpected_gpu_context',
    workerId: w.id,
    message: `${w.id} is on a CPU lane but holds a context on GPU ${holding.join(',')}`,
    evidence: { holdingGpus: holding, pids: [...pids], processes: named },
  };
}
