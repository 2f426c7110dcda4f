import type { GpuReading } from '../nvidia-smi';
import { processTree } from '../proc';
import type { WorkerRecord } from '../worker/record';

// Work on the wrong device ruins a run for hours:
//   gpu_fallback            — a GPU-lane worker holds no context on its GPUs
//                             once its grace period has passed (it fell back to the CPU);
//   unexpected_gpu_context  — a CPU-lane worker holds a GPU context.
// A worker counts by its whole process tree: a launcher's child may be the one on the GPU.

export interface GpuFinding {
  class: 'gpu_fallback' | 'unexpected_gpu_context';
  workerId: string;
  message: string;
  evidence: Record<string, unknown>;
}

export function checkGpuBinding(
  w: WorkerRecord,
  laneKind: 'cpu' | 'gpu' | 'slurm',
  gpus: GpuReading[],
  now: number,
  graceMs: number,
  tree: (pid: number) => number[] = processTree,
): GpuFinding | null {
  if (w.pid === null || w.launchedAt === null) return null;
  const pids = new Set(tree(w.pid));
  const holding = gpus.filter((g) => g.processes.some((p) => pids.has(p.pid))).map((g) => g.index);
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
  return {
    class: 'unexpected_gpu_context',
    workerId: w.id,
    message: `${w.id} is on a CPU lane but holds a context on GPU ${holding.join(',')}`,
    evidence: { holdingGpus: holding, pids: [...pids] },
  };
}
