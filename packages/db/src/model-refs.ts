// What a model reference in a request names: a model of the project (trained or imported), or a
// checkpoint of one of its jobs (by fine_tuned_model_checkpoint name or ftckpt- id).
import { type CheckpointRecord, type ModelRecord, parseCheckpointRef } from '@crucible/domain';
import type { Store } from './index';

/** A model id, or a job's checkpoint by name with what the job trained (its base model, and its peft config if any). */
export type ModelRef =
  | { kind: 'model'; model: ModelRecord }
  | { kind: 'checkpoint'; checkpoint: CheckpointRecord; jobModel: string; jobPeft: ModelRecord['peft'] };

export async function findModelRef(store: Pick<Store, 'models' | 'jobs'>, projectId: string, ref: string): Promise<ModelRef | null> {
  const model = await store.models.get(projectId, ref);
  if (model) return { kind: 'model', model };
  const ck = parseCheckpointRef(ref);
  if (!ck) return null;
  const checkpoint = await store.jobs.getCheckpoint(projectId, ck.jobId, ck.step);
  if (!checkpoint) return null;
  const job = await store.jobs.get(projectId, ck.jobId);
  return { kind: 'checkpoint', checkpoint, jobModel: job?.model ?? '', jobPeft: job?.hyperparameters.peft ?? null };
}
