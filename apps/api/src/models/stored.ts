// Reading what the API needs of stored models without loading their weights: safetensors headers
// (by range request), and the tokenizer a job's base model brings.
import type { ModelRef } from '@crucible/db';
import type { Architecture } from '@crucible/domain';
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

/** Where a model's or checkpoint's tokenizer is stored: a folder's tokenizer.json, else the weights' metadata. */
export interface TokenizerSource {
  folderFile?: string;
  /** tokenizer_config.json, when the folder has one (it names the special tokens' roles). */
  configFile?: string;
  weights: string;
}

export function tokenizerSource(ref: ModelRef): TokenizerSource {
  if (ref.kind === 'model') {
    const file = (name: string) => keys.modelFile(ref.model.projectId, ref.model.id, name);
    return { folderFile: file('tokenizer.json'), configFile: file('tokenizer_config.json'), weights: ref.model.storageKey };
  }
  return { weights: ref.checkpoint.storageKey };
}

/** The tokenizer at a source (storage only: file work threads read it too). */
export async function readStoredTokenizer(storage: Storage, source: TokenizerSource): Promise<Tokenizer> {
  if (source.folderFile && (await storage.exists(source.folderFile))) {
    const config = source.configFile && (await storage.exists(source.configFile)) ? await storage.get(source.configFile) : undefined;
    return readTokenizer(await storage.get(source.folderFile), config);
  }
  const { metadata } = await readSafetensorsHeader(storage, source.weights);
  if (metadata.format !== CHECKPOINT_FORMAT || !metadata.tokenizer) throw new Error(`${source.weights}: no tokenizer found`);
  return readTokenizer(new TextEncoder().encode(metadata.tokenizer));
}

/** The tokenizer of a model or checkpoint (from tokenizer.json, or a checkpoint's metadata). */
export function storedTokenizer(storage: Storage, ref: ModelRef): Promise<Tokenizer> {
  return readStoredTokenizer(storage, tokenizerSource(ref));
}

/** The model config recorded in a checkpoint's metadata. */
export async function checkpointModelConfig(storage: Storage, key: string): Promise<{ arch: Architecture; blockSize: number; peft?: { type: string } }> {
  const { metadata } = await readSafetensorsHeader(storage, key);
  return JSON.parse(metadata.model_config ?? '{}');
}
