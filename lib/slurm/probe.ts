import { z } from 'zod';
import { errorMessage } from '../errors';
import { scontrolRecords } from './jobs';
import { runSlurm } from './slurm-cli';

// `swarmctl probe slurm`: the cluster as a slurm lane sees it, in one
// reading: each partition (scontrol show partition) and each node with its
// state (sinfo --json), so a person can tell why a job pends.

export interface SlurmPartition {
  name: string;
  state: string;
  default: boolean;
  nodes: string;
  totalCpus: number | null;
  totalNodes: number | null;
  maxTime: string;
}

export interface SlurmNode {
  name: string;
  /** sinfo's state, with its flags: idle, mixed, allocated, down, drain… */
  state: string;
  flags: string[];
  cpus: number | null;
  allocCpus: number | null;
  realMemoryMiB: number | null;
  freeMemoryMiB: number | null;
  partitions: string[];
  reason: string;
}

export type SlurmProbe =
  { available: true; partitions: SlurmPartition[]; nodes: SlurmNode[] } | { available: false; reason: string };

const num = (v: string | undefined): number | null => (v !== undefined && /^\d+$/.test(v) ? Number(v) : null);

export function parsePartitions(text: string): SlurmPartition[] {
  return scontrolRecords(text, 'PartitionName').map((f) => ({
    name: f.PartitionName ?? '?',
    state: f.State ?? 'UNKNOWN',
    default: f.Default === 'YES',
    nodes: f.Nodes ?? '',
    totalCpus: num(f.TotalCPUs),
    totalNodes: num(f.TotalNodes),
    maxTime: f.MaxTime ?? 'UNLIMITED',
  }));
}

const Count = z.number().nullable().optional();
const SinfoJson = z.looseObject({
  nodes: z.array(
    z.looseObject({
      name: z.string(),
      state: z.union([z.string(), z.array(z.string())]),
      state_flags: z.array(z.string()).optional(),
      cpus: Count,
      alloc_cpus: Count,
      real_memory: Count,
      free_memory: Count,
      partitions: z.array(z.string()).optional(),
      reason: z.string().optional(),
    }),
  ),
});

export function parseSinfoNodes(text: string): SlurmNode[] {
  const r = SinfoJson.safeParse(JSON.parse(text));
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`unexpected sinfo JSON at ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
  }
  return r.data.nodes.map((n) => {
    const [state = 'unknown', ...rest] = Array.isArray(n.state) ? n.state : [n.state];
    return {
      name: n.name,
      state: state.toLowerCase(),
      flags: [...rest, ...(n.state_flags ?? [])].map((s) => s.toLowerCase()),
      cpus: n.cpus ?? null,
      allocCpus: n.alloc_cpus ?? null,
      realMemoryMiB: n.real_memory ?? null,
      freeMemoryMiB: n.free_memory ?? null,
      partitions: n.partitions ?? [],
      reason: n.reason ?? '',
    };
  });
}

export async function probeSlurm(env: NodeJS.ProcessEnv = process.env): Promise<SlurmProbe> {
  try {
    const [parts, nodes] = await Promise.all([
      runSlurm(['scontrol', 'show', 'partition', '-o'], env),
      runSlurm(['sinfo', '--json'], env),
    ]);
    return { available: true, partitions: parsePartitions(parts), nodes: parseSinfoNodes(nodes) };
  } catch (err) {
    return { available: false, reason: errorMessage(err) };
  }
}
