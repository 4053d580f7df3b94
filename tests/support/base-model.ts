// A tiny base model for fine-tuning tests: gpt-nano pretrained on a slice of Tiny Shakespeare with
// a character tokenizer, through the official client (about ten seconds on two cores).
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { shakespeare } from './data';
import { waitForJobStatus } from './platform';

/** Pretrains gpt-nano on `text` (default: the first 40,000 characters) and returns the model's name; `seed` makes the run repeatable. */
export async function pretrainTinyBase(client: OpenAI, opts: { text?: string; blockSize?: number; seed?: number } = {}): Promise<string> {
  const f = await client.files.create({ file: await toFile(Buffer.from(opts.text ?? shakespeare(40_000)), 'base.txt'), purpose: 'fine-tune' });
  const hyperparameters = {
    max_steps: 300,
    batch_size: 8,
    block_size: opts.blockSize ?? 32,
    eval_interval: 0,
    eval_batches: 2,
    learning_rate: 3e-3,
    tokenizer: { type: 'char' },
  };
  const job = await client.fineTuning.jobs.create({
    model: 'gpt-nano',
    training_file: f.id,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    method: { type: 'pretrain', pretrain: { hyperparameters } } as never,
  });
  return (await waitForJobStatus(client, job.id)).fine_tuned_model as string;
}
