// The formats of a job's names: its queue entries, checkpoint ids and the model names it produces.
// A fine-tuned model's name is fixed when the job is created, so checkpoints are named the same
// before and after the job succeeds.
import { ID_PREFIX, idBody } from '../ids';

/** `ft:<base>:<suffix or crucible>:<job id body>`, as OpenAI's `ft:` names. */
export function fineTunedModelName(base: string, suffix: string | null | undefined, jobId: string): string {
  return `ft:${base}:${suffix || 'crucible'}:${idBody(jobId)}`;
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
export function trainingQueueEntryId(jobId: string, attempt: number): string {
  return `${jobId}.${attempt}`;
}
