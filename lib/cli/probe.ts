import { UsageError } from '../errors';
import { probeGpus } from '../nvidia-smi';
import { probeSlurm } from '../slurm/probe';
import { printJson, type GlobalOptions } from './cli-context';

/** Bumped only when a field of `probe gpu --json` is removed or renamed; fields may be added. */
export const PROBE_SCHEMA_VERSION = 1;

/** `swarmctl probe gpu|slurm`: exit 0 whether or not it answered; the answer says which. */
export async function probeCommand(what: string, opts: GlobalOptions): Promise<number> {
  if (what === 'slurm') return probeSlurmCommand(opts);
  if (what !== 'gpu') throw new UsageError(`probe expects "gpu" or "slurm", got "${what}"`);
  const r = await probeGpus();
  // docs/cli.md's shape; notInstalled only paces util-controller's re-probes, so it is not printed.
  if (opts.json)
    printJson(
      r.available
        ? { schemaVersion: PROBE_SCHEMA_VERSION, ...r }
        : { schemaVersion: PROBE_SCHEMA_VERSION, available: false, gpus: [], reason: r.reason },
    );
  else if (!r.available) process.stdout.write(`no GPU reading: ${r.reason}\n`);
  else {
    process.stdout.write(`driver ${r.driverVersion ?? '?'}\n`);
    for (const g of r.gpus) {
      process.stdout.write(
        `GPU ${g.index} ${g.name ?? '?'}: ${g.utilPct ?? '-'}% util, ${g.memUsedMiB ?? '-'}/${g.memTotalMiB ?? '-'} MiB, ${g.temperatureC ?? '-'} C, ${g.processes.length} process(es)${g.processes.length ? ` [${g.processes.map((p) => p.pid).join(', ')}]` : ''}\n`,
      );
    }
  }
  return 0;
}

async function probeSlurmCommand(opts: GlobalOptions): Promise<number> {
  const r = await probeSlurm();
  if (opts.json) {
    printJson({ schemaVersion: PROBE_SCHEMA_VERSION, ...r });
    return 0;
  }
  if (!r.available) {
    process.stdout.write(`no SLURM reading: ${r.reason}\n`);
    return 0;
  }
  for (const p of r.partitions)
    process.stdout.write(
      `partition ${p.name}${p.default ? ' (default)' : ''}: ${p.state}, nodes ${p.nodes}, ${p.totalCpus ?? '?'} CPUs, max time ${p.maxTime}\n`,
    );
  for (const n of r.nodes)
    process.stdout.write(
      `node ${n.name}: ${[n.state, ...n.flags].join('+')}, ${n.allocCpus ?? '?'}/${n.cpus ?? '?'} CPUs allocated, ${n.freeMemoryMiB ?? '?'}/${n.realMemoryMiB ?? '?'} MiB free${n.reason ? `, reason: ${n.reason}` : ''}\n`,
    );
  return 0;
}
