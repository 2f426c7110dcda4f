import { z } from 'zod';
import { Duration } from './primitives';

// A lane: a named pool of slots. cpu and gpu lanes run their workers on this
// machine under PM2; a slurm lane runs each worker as a batch job on a SLURM
// cluster, from a folder the head node and the compute nodes both see.

/**
 * sbatch options Swarm sets itself on every job, so a lane may not: the
 * shim's output, the job's name, its environment, its folder, and
 * --no-requeue (Swarm resubmits, inside its own records). --wrap runs a
 * shell, which Swarm never does.
 */
const OWNED_SBATCH_OPTIONS = [
  ['--wrap', 'runs its command through a shell; Swarm submits the worker shim itself'],
  ['--output', 'Swarm sends the shim output to the worker folder'],
  ['-o', 'Swarm sends the shim output to the worker folder'],
  ['--error', 'Swarm sends the shim output to the worker folder'],
  ['-e', 'Swarm sends the shim output to the worker folder'],
  ['--job-name', 'Swarm names each job for its worker'],
  ['-J', 'Swarm names each job for its worker'],
  ['--export', "the worker's environment comes from its spec, as on a local lane"],
  ['--chdir', "the job runs in the job's cwd"],
  ['-D', "the job runs in the job's cwd"],
  ['--requeue', 'Swarm resubmits a failed node or preempted job itself, so it can count and record it'],
  ['--array', 'one job is one worker'],
  ['-a', 'one job is one worker'],
  ['--parsable', 'Swarm sets it to read the job id'],
] as const;

/** Why an sbatch argument is not allowed on a lane, or null. */
export function sbatchArgProblem(arg: string): string | null {
  for (const [opt, why] of OWNED_SBATCH_OPTIONS) {
    const long = opt.startsWith('--');
    if (arg === opt || (long && arg.startsWith(`${opt}=`)) || (!long && arg.startsWith(opt) && arg.length > 2))
      return `${opt} is not allowed: ${why}`;
  }
  return null;
}

export const LaneSchema = z
  .strictObject({
    kind: z.enum(['cpu', 'gpu', 'slurm']).meta({
      description:
        'What the lane runs on. A gpu lane gives each worker CUDA_VISIBLE_DEVICES from its gpus; a slurm lane runs each worker as a SLURM batch job (docs/slurm.md).',
    }),
    slots: z.number().int().min(1).max(1024).meta({ description: 'How many workers of this lane run at once.' }),
    gpus: z.array(z.number().int().nonnegative()).optional().meta({
      description: 'GPU indexes (as nvidia-smi numbers them) a gpu lane hands to its workers; required for a gpu lane.',
    }),
    fill: z.enum(['utilization', 'slots']).default('utilization').meta({
      description:
        'utilization: start queued work only while the lane resource sits below target (util-controller); slots: whenever a slot is free. A slurm lane is always filled by slots: the cluster, not this machine, has the resources.',
    }),
    hideGpus: z.boolean().default(true).meta({
      description:
        'A cpu lane\'s workers get CUDA_VISIBLE_DEVICES="" so CPU work cannot take a GPU (over the job\'s env); false leaves it to the job. Ignored on a gpu lane, whose workers get their GPU, and on a slurm lane, where SLURM hands out GPUs (--gres).',
    }),
    partition: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected a SLURM partition name' })
      .optional()
      .meta({ description: "slurm lane: the partition its jobs are submitted to; the cluster's default if unset." }),
    sbatch: z.array(z.string().min(1)).optional().meta({
      description:
        'slurm lane: extra sbatch arguments, each one argv element, e.g. ["--gres=gpu:1", "--time=04:00:00"]. --wrap and the options Swarm sets (--output, --job-name, --export, --chdir, --requeue) are refused.',
    }),
    sharedDir: z.string().min(1).optional().meta({
      description:
        'slurm lane, required: a folder the head node and every compute node see at the same path (NFS). Worker folders and checkpoints live in it; relative to the config file.',
    }),
    poll: Duration.optional().meta({
      description:
        'slurm lane: how often the shared folder is polled for exit and progress files (a file written on a compute node gives no inotify event on the head node). Default 2s.',
    }),
    pendingAfter: Duration.optional().meta({
      description:
        "slurm lane: a job still PENDING after this is pending_stuck, escalated with SLURM's Reason; it stays queued. Default 10m.",
    }),
  })
  .superRefine((lane, ctx) => {
    if (lane.kind === 'gpu' && (!lane.gpus || lane.gpus.length === 0))
      ctx.addIssue({ code: 'custom', path: ['gpus'], message: 'expected a list of GPU indexes for a gpu lane' });
    if (lane.kind === 'slurm') {
      if (!lane.sharedDir)
        ctx.addIssue({
          code: 'custom',
          path: ['sharedDir'],
          message: 'expected a folder the head node and the compute nodes share, for a slurm lane',
        });
      if (lane.gpus)
        ctx.addIssue({
          code: 'custom',
          path: ['gpus'],
          message: 'a slurm lane takes GPUs from SLURM: use sbatch ["--gres=gpu:N"]',
        });
      lane.sbatch?.forEach((arg, i) => {
        const problem = sbatchArgProblem(arg);
        if (problem) ctx.addIssue({ code: 'custom', path: ['sbatch', i], message: problem });
      });
    } else {
      for (const field of ['partition', 'sbatch', 'sharedDir', 'poll', 'pendingAfter'] as const)
        if (lane[field] !== undefined)
          ctx.addIssue({ code: 'custom', path: [field], message: `only a slurm lane takes ${field}` });
    }
  });
