import { UsageError } from '../errors';
import { probeGpus } from '../nvidia-smi';
import { printJson, type GlobalOptions } from './cli-context';

/** `swarmctl probe gpu`: exit 0 whether or not a GPU answered; the answer says which. */
export async function probeCommand(what: string, opts: GlobalOptions): Promise<number> {
  if (what !== 'gpu') throw new UsageError(`probe expects "gpu", got "${what}"`);
  const r = await probeGpus();
  // CONTRACT's shape: notInstalled only paces util-controller's re-probes.
  if (opts.json) printJson(r.available ? r : { available: false, gpus: [], reason: r.reason });
  else if (!r.available) process.stdout.write(`no GPU reading: ${r.reason}\n`);
  else {
    process.stdout.write(`driver ${r.driverVersion ?? '?'}\n`);
    for (const g of r.gpus) {
      process.stdout.write(`GPU ${g.index} ${g.name ?? '?'}: ${g.utilPct ?? '-'}% util, ${g.memUsedMiB ?? '-'}/${g.memTotalMiB ?? '-'} MiB, ${g.temperatureC ?? '-'} C, ${g.processes.length} process(es)${g.processes.length ? ` [${g.processes.map((p) => p.pid).join(', ')}]` : ''}\n`);
    }
  }
  return 0;
}
