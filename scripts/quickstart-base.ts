// The quickstart's second path: an instruct model already on this machine (a Hugging Face folder,
// e.g. SmolLM2-135M-Instruct or Qwen2.5-0.5B-Instruct downloaded with `huggingface-cli download`)
// is imported and fine-tuned with LoRA on a small chat dataset, then asked a question in chat.
//   npm run quickstart -- --base /path/to/SmolLM2-135M-Instruct [--steps 60]
import { openAsBlob, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isImportFile } from '@crucible/api';
import type { Crucible, JobEvent } from '@crucible/sdk';

/** The files of a folder that an import takes: config, weights (one file or shards with their index), tokenizer files. */
export function baseFolderFiles(dir: string): string[] {
  const names = readdirSync(dir).filter((n) => isImportFile(n));
  for (const needed of ['config.json', 'tokenizer.json']) {
    if (!names.includes(needed)) throw new Error(`${dir} has no ${needed}: give a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)`);
  }
  if (!names.some((n) => n.endsWith('.safetensors'))) throw new Error(`${dir} has no model.safetensors (or shards): the weights must be in safetensors`);
  return names.sort();
}

/**
 * Imports the folder at `dir`, fine-tunes it with LoRA on `chatFile` (chat JSONL) for `steps`
 * steps, and answers `question` with the result in chat. Returns the models and the answer.
 */
export async function fineTuneBase(
  crucible: Crucible,
  dir: string,
  opts: { chatFile: string; steps: number; question: string; seed?: number; onEvent?: (e: JobEvent) => void; log?: (line: string) => void },
): Promise<{ base: string; model: string; answer: string }> {
  const log = opts.log ?? (() => {});
  const names = baseFolderFiles(dir);
  log(`importing ${dir} (${names.join(', ')})`);
  const files = await Promise.all(names.map(async (name) => ({ name, data: await openAsBlob(join(dir, name)) })));
  const base = await crucible.importModel(files, { name: 'quickstart-base' });
  log(`imported ${base.id} (${base.arch})`);
  const file = await crucible.uploadFile({ name: 'quickstart-chat.jsonl', data: readFileSync(opts.chatFile, 'utf8') }, { purpose: 'fine-tune' });
  const ready = await crucible.waitForFile(file.id);
  if (ready.status !== 'processed') throw new Error(`the chat dataset was not accepted: ${ready.status_details}`);
  const job = await crucible.createJob({
    model: base.id,
    training_file: file.id,
    suffix: 'quickstart',
    seed: opts.seed ?? 1337,
    method: {
      type: 'supervised',
      supervised: {
        peft: { type: 'lora', rank: 8 },
        hyperparameters: { max_steps: opts.steps, batch_size: 4, block_size: 128, eval_interval: 0, eval_batches: 2, log_interval: 10 },
      },
    },
  } as never);
  log(`job ${job.id}: ${opts.steps} steps of LoRA on ${base.id}`);
  const done = await crucible.waitForJob(job.id, { onEvent: opts.onEvent });
  if (done.status !== 'succeeded') throw new Error(`job ${done.status}: ${JSON.stringify(done.error)}`);
  const model = done.fine_tuned_model as string;
  const chat = await crucible.createChatCompletion({ model, messages: [{ role: 'user', content: opts.question }], max_tokens: 40, temperature: 0, seed: 1 });
  return { base: base.id, model, answer: chat.choices[0]?.message.content ?? '' };
}
