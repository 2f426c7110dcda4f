// A worker's id names its folder, its checkpoint folder and its PM2 app, so
// two workers that share one would share all three. Ids are made by joining
// the job's name with a task id or a replica slot, and a join can collide:
// task "0" of job j and replica 0 of j are both "j-0"; job "a" with task
// "b-c" and job "a-b" with task "c" are both "a-b-c". Such a task is refused
// where it enters: at config load and at `swarmctl submit`.

export const taskWorkerId = (job: string, taskId: string): string => `${job}-${taskId}`;
export const replicaWorkerId = (job: string, slot: number): string => `${job}-${slot}`;

interface IdSources {
  jobs: Record<string, { replicas: number }>;
  tasks: Iterable<{ job: string; id: string }>;
}

/** Every worker id these jobs and tasks make, with what makes it; the first maker of an id wins. */
export function workerIdOwners(src: IdSources): Map<string, string> {
  const owners = new Map<string, string>();
  for (const [job, j] of Object.entries(src.jobs)) {
    for (let slot = 0; slot < j.replicas; slot++)
      owners.set(replicaWorkerId(job, slot), `replica ${slot} of job ${job}`);
  }
  for (const t of src.tasks) {
    const id = taskWorkerId(t.job, t.id);
    if (!owners.has(id)) owners.set(id, `task ${t.id} of job ${t.job}`);
  }
  return owners;
}

/** Why task `taskId` of `job` cannot be added beside these owners, or null when its worker id is free. */
export function workerIdClash(owners: Map<string, string>, job: string, taskId: string): string | null {
  const id = taskWorkerId(job, taskId);
  const owner = owners.get(id);
  return owner === undefined ? null : `its worker id "${id}" is already ${owner}'s`;
}
