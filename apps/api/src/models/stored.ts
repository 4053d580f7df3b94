// Reading what the API needs of stored models without loading their weights: safetensors headers
// (by range request), and the tokenizer a job's base model brings.
import type { ModelRef } from '@crucible/db';
import {
  CHECKPOINT_FORMAT,
  parseSafetensorsHeader,
  readTokenizer,
  type SafetensorsEntry,
  safetensorsHeaderLength,
  type Tokenizer,
} from '@crucible/model-files';
import { keys, type Storage } from '@crucible/storage';

/** The header of a stored safetensors file; given the file's size, its layout is checked against it too. */
export async function readSafetensorsHeader(
  storage: Storage,
  key: string,
  fileBytes?: number,
): Promise<{ entries: Map<string, SafetensorsEntry>; metadata: Record<string, string>; dataStart: number }> {
  const n = safetensorsHeaderLength(await storage.getRange(key, 0, 7), fileBytes);
  const header = await storage.getRange(key, 8, 8 + n - 1);
  return { ...parseSafetensorsHeader(header, fileBytes === undefined ? undefined : fileBytes - 8 - n), dataStart: 8 + n };
}

/** The tokenizer of a model or checkpoint (from tokenizer.json, or a checkpoint's metadata). */
export async function storedTokenizer(storage: Storage, ref: ModelRef): Promise<Tokenizer> {
  if (ref.kind === 'model') {
    const folderFile = keys.modelFile(ref.model.projectId, ref.model.id, 'tokenizer.json');
    if (await storage.exists(folderFile)) return readTokenizer(await storage.get(folderFile));
  }
  const key = ref.kind === 'model' ? ref.model.storageKey : ref.checkpoint.storageKey;
  const { metadata } = await readSafetensorsHeader(storage, key);
  if (metadata.format !== CHECKPOINT_FORMAT || !metadata.tokenizer) throw new Error(`${key}: no tokenizer found`);
  return readTokenizer(new TextEncoder().encode(metadata.tokenizer));
}

/** The model config recorded in a checkpoint's metadata. */
export async function checkpointModelConfig(storage: Storage, key: string): Promise<{ arch: 'gpt' | 'bert'; blockSize: number; peft?: { type: string } }> {
  const { metadata } = await readSafetensorsHeader(storage, key);
  return JSON.parse(metadata.model_config ?? '{}');
}
