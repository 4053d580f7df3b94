// The formats of a job's names: its queue entries, checkpoint ids and the model names it produces.
// A fine-tuned model's name is fixed when the job is created, so checkpoints are named the same
// before and after the job succeeds.
import { ID_PREFIX, idBody } from '../ids';

/**
 * `ft:<root>:<suffix or crucible>:<job id body>`, as OpenAI's `ft:` names. The root is the base
 * model family: a fine-tuned model's or an import's own root, so names never nest (ft:ft:...).
 */
export function fineTunedModelName(base: string, suffix: string | null | undefined, jobId: string): string {
  return `ft:${rootModelName(base)}:${suffix || 'crucible'}:${idBody(jobId)}`;
}

/** `ft:<root>:...` and `imported:<root>:...` -> root; a preset is its own root. */
export function rootModelName(name: string): string {
  const m = /^(?:ft|imported):([^:]+):/.exec(name);
  return m ? (m[1] as string) : name;
}

/** `imported:<name>:<random body>`: the id of a model uploaded to the project. */
export function importedModelName(name: string, body: string): string {
  return `imported:${name}:${body}`;
}

/** The job and step a checkpoint name (`...:<job body>:ckpt-step-<n>`) or id (`ftckpt-<job body>-<n>`) points at. */
export function parseCheckpointRef(ref: string): { jobId: string; step: number } | null {
  const byName = /:([A-Za-z0-9]+):ckpt-step-(\d+)$/.exec(ref);
  if (byName && ref.startsWith('ft:')) return { jobId: `${ID_PREFIX.job}-${byName[1]}`, step: Number(byName[2]) };
  const byId = new RegExp(`^${ID_PREFIX.checkpoint}-([A-Za-z0-9]+)-(\\d+)$`).exec(ref);
  if (byId) return { jobId: `${ID_PREFIX.job}-${byId[1]}`, step: Number(byId[2]) };
  return null;
}

/** The name of a job's checkpoint at `step`: `<fine-tuned model name>:ckpt-step-<step>`. */
export function checkpointModelName(fineTunedModel: string, step: number): string {
  return `${fineTunedModel}:ckpt-step-${step}`;
}

/** Checkpoint ids are derived from the job and step, so writing one twice is idempotent. */
export function checkpointId(jobId: string, step: number): string {
  return `${ID_PREFIX.checkpoint}-${idBody(jobId)}-${step}`;
}

/** The queue entry of one attempt of a job (each attempt is a distinct queue entry). */
export function trainingQueueEntryId(jobId: string, attempt: number, rank = 0): string {
  return rank === 0 ? `${jobId}.${attempt}` : `${jobId}.${attempt}.r${rank}`;
}
