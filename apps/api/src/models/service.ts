// Models: the base presets (untrained shapes) and the project's models, trained by its jobs or
// imported (a GPT-2-architecture folder in Hugging Face layout). Every stored model is a folder of
// Hugging Face files (see @crucible/model-files); downloads stream it as a .tar.gz.
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { PassThrough, type Readable, Transform } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { findModelRef } from '@crucible/db';
import { CrucibleError, importedModelName, isPreset, type ModelObject, type ModelRecord, PRESETS, rootModelName } from '@crucible/domain';
import {
  ADAPTER_FILES,
  CHECKPOINT_FORMAT,
  checkDecoderHeaders,
  checkGpt2Header,
  checkTokenizerFits,
  DECODER_FAMILIES,
  DECODER_INDEX,
  DECODER_SHARD,
  decoderConfigFromHf,
  type ModelConfig,
  ModelFormatError,
  readCheckpointFile,
  readModelConfig,
  readTokenizer,
  type SafetensorsEntry,
  SafetensorsError,
  tokenizerFromJSON,
  tokenizerSideFiles,
  UnsupportedTokenizerError,
  writeAdapterFolder,
  writeModelFolder,
} from '@crucible/model-files';
import { keys } from '@crucible/storage';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { storageRefusal } from '../files/service';
import { unix } from '../pagination';
import { checkpointModelConfig, readSafetensorsHeader } from './stored';
import { readTar, TarFormatError, type TarSource, tarStream } from './tar';

const PRESET_CREATED = 1764374400; // 2025-11-29, when the presets were defined

/** The files an import may carry (others in an archive are skipped), besides a sharded checkpoint's model-0000N-of-0000M.safetensors. */
export const IMPORT_FILES = [
  'model.safetensors',
  DECODER_INDEX,
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
];
/** model.safetensors or a shard of a sharded checkpoint: streamed, never held in memory. */
const isWeightsFile = (name: string) => name === 'model.safetensors' || DECODER_SHARD.test(name);
/** Whether an import takes a file of this name (the quickstart's --base reads a folder with it). */
export const isImportFile = (name: string) => IMPORT_FILES.includes(name) || DECODER_SHARD.test(name);
/** config.json model types an import reads (others are refused naming theirs). */
const IMPORT_MODEL_TYPES = ['gpt2', ...DECODER_FAMILIES];
const SMALL_FILE_LIMIT = 64 * 1024 * 1024;
/** An archive entry Crucible does not import (pytorch_model.bin, README.md, ...) may be at most this large. */
const SKIPPED_ENTRY_LIMIT = 64 * 1024 * 1024;
/** How many times its sent size a gzipped archive may unpack to (past 64 MiB). */
const MAX_EXPANSION = 100;

/** A small JSON file of an import, as an object (else a 400 naming it). */
function parseJsonFile(bytes: Uint8Array, file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new CrucibleError('invalid_model', `${file} is not valid JSON: ${(err as Error).message}`, file);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new CrucibleError('invalid_model', `${file} is not a JSON object`, file);
  return doc as Record<string, unknown>;
}

/** What a broken or hostile archive becomes: a 400 naming the part. */
function archiveError(err: unknown, filename: string): unknown {
  if (err instanceof CrucibleError) return err;
  if (err instanceof TarFormatError) return new CrucibleError('invalid_model', `${filename}: ${err.message.replace(/^tar: /, '')}`, 'file');
  const code = (err as { code?: string }).code ?? '';
  if (code.startsWith('Z_') || code === 'ERR_PADDING_1') {
    return new CrucibleError(
      'invalid_model',
      `${filename} is not a valid gzip stream (${(err as Error).message}); send a .tar.gz, a .tar or the files themselves`,
      'file',
    );
  }
  return err;
}

function presetObject(name: keyof typeof PRESETS): ModelObject {
  return {
    id: name,
    object: 'model',
    created: PRESET_CREATED,
    owned_by: 'crucible',
    arch: PRESETS[name].arch,
    base_model: null,
    fine_tuning_job: null,
    source: 'preset',
    peft: null,
  };
}

function modelObject(m: ModelRecord): ModelObject {
  return {
    id: m.id,
    object: 'model',
    created: unix(m.createdAt) as number,
    owned_by: m.projectId,
    arch: m.arch,
    base_model: m.baseModel,
    fine_tuning_job: m.jobId,
    source: m.source,
    peft: m.peft as ModelObject['peft'],
  };
}

export async function listModels(deps: Pick<Deps, 'store'>, actor: Actor) {
  const rows = await deps.store.models.list(actor.projectId);
  return { object: 'list' as const, data: [...Object.keys(PRESETS).map((n) => presetObject(n as keyof typeof PRESETS)), ...rows.map(modelObject)] };
}

export async function getModel(deps: Pick<Deps, 'store'>, actor: Actor, id: string, param = 'model'): Promise<ModelRecord> {
  const m = await deps.store.models.get(actor.projectId, id);
  if (!m) {
    if (isPreset(id)) throw new CrucibleError('invalid_request', `${id} is a base preset with no trained weights; train a model from it first`, param);
    throw new CrucibleError('model_not_found', `model ${id} does not exist in this project`, param);
  }
  return m;
}

/** A job's checkpoint by its fine_tuned_model_checkpoint name (or ftckpt- id), or null. */
async function findCheckpoint(deps: Pick<Deps, 'store'>, actor: Actor, id: string) {
  if (isPreset(id)) return null;
  const ref = await findModelRef(deps.store, actor.projectId, id);
  return ref?.kind === 'checkpoint' ? ref : null;
}

/**
 * What a request may sample from: a model, or a job's checkpoint (as OpenAI's
 * fine_tuned_model_checkpoint names are models). `id` is the name the worker loads.
 */
export async function getSamplingModel(
  deps: Pick<Deps, 'store' | 'storage'>,
  actor: Actor,
  id: string,
  param = 'model',
): Promise<{ id: string; arch: ModelRecord['arch'] }> {
  const ck = await findCheckpoint(deps, actor, id);
  if (ck) return { id, arch: (await checkpointModelConfig(deps.storage, ck.checkpoint.storageKey)).arch };
  const m = await getModel(deps, actor, id, param);
  return { id: m.id, arch: m.arch };
}

export async function retrieveModel(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string): Promise<ModelObject> {
  if (isPreset(id)) return presetObject(id);
  const ck = await findCheckpoint(deps, actor, id);
  if (ck) {
    const config = await checkpointModelConfig(deps.storage, ck.checkpoint.storageKey);
    return {
      id,
      object: 'model',
      created: unix(ck.checkpoint.createdAt) as number,
      owned_by: actor.projectId,
      arch: config.arch,
      base_model: ck.jobModel,
      fine_tuning_job: ck.checkpoint.jobId,
      source: 'checkpoint',
      peft: (config.peft as ModelObject['peft']) ?? null,
    };
  }
  return modelObject(await getModel(deps, actor, id));
}

export async function deleteModel(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string) {
  if (isPreset(id)) throw new CrucibleError('invalid_request', 'base presets cannot be deleted', 'model');
  const m = await getModel(deps, actor, id);
  await deps.store.models.delete(actor.projectId, m.id);
  await deps.storage.deletePrefix(keys.modelPrefix(actor.projectId, m.id));
  return { id, object: 'model' as const, deleted: true };
}

// ── downloads ───────────────────────────────────────────────────────────────────────────────

export type DownloadVariant = 'full' | 'adapter';

/**
 * The model's folder as a streamed .tar.gz. `full`: weights (a LoRA model's merged), config and
 * tokenizer files; `adapter`: the adapter files (PEFT's for LoRA) with the tokenizer files.
 */
export async function modelArchive(
  deps: Pick<Deps, 'store' | 'storage'>,
  actor: Actor,
  id: string,
  variant: DownloadVariant,
): Promise<{ name: string; body: Readable }> {
  const ck = await findCheckpoint(deps, actor, id);
  if (ck) return checkpointArchive(deps, id, ck.checkpoint, ck.jobModel, variant);
  const m = await getModel(deps, actor, id);
  const files = await folderFiles(deps, m);
  const isAdapter = (n: string) => (ADAPTER_FILES as readonly string[]).includes(n);
  const isWeights = (n: string) => isWeightsFile(n) || n === DECODER_INDEX || n === 'config.json';
  if (variant === 'adapter' && !files.some((f) => isAdapter(f.name))) {
    throw new CrucibleError('invalid_request', `model ${m.id} was not trained with LoRA or adapters; download variant=full`, 'variant');
  }
  const chosen = variant === 'adapter' ? files.filter((f) => !isWeights(f.name)) : files.filter((f) => !isAdapter(f.name));
  const safe = m.id.replace(/[^A-Za-z0-9_.-]/g, '_');
  const body = tarStream(chosen).pipe(createGzip());
  return { name: `${safe}${variant === 'adapter' ? '-adapter' : ''}.tar.gz`, body };
}

/** A checkpoint is converted in memory: larger ones are refused rather than held. */
export const MAX_CHECKPOINT_DOWNLOAD_BYTES = 2 ** 30;

/**
 * A job's checkpoint as a model folder, .tar.gz: a full checkpoint as the model (full), a LoRA or
 * adapter checkpoint (which holds only the adapter's weights) as its adapter files (adapter).
 */
async function checkpointArchive(
  deps: Pick<Deps, 'storage'>,
  id: string,
  ck: { storageKey: string },
  baseModel: string,
  variant: DownloadVariant,
): Promise<{ name: string; body: Readable }> {
  const size = (await deps.storage.size(ck.storageKey)) ?? 0;
  if (size > MAX_CHECKPOINT_DOWNLOAD_BYTES) {
    throw new CrucibleError(
      'invalid_request',
      `checkpoint ${id} is ${size} bytes; checkpoints up to ${MAX_CHECKPOINT_DOWNLOAD_BYTES} are converted for download (download the job's model, or fine-tune from the checkpoint with max_steps 1 to make it a model)`,
      'model',
    );
  }
  const config = await checkpointModelConfig(deps.storage, ck.storageKey);
  const partial = Boolean(config.peft);
  if (partial && variant === 'full') {
    throw new CrucibleError(
      'invalid_request',
      `checkpoint ${id} holds only its ${config.peft?.type} weights (its base is frozen): download variant=adapter`,
      'variant',
    );
  }
  if (!partial && variant === 'adapter')
    throw new CrucibleError('invalid_request', `checkpoint ${id} was trained without LoRA or adapters; download variant=full`, 'variant');
  const { modelConfig, weights, tokenizer } = readCheckpointFile(await deps.storage.get(ck.storageKey));
  const folder = partial
    ? writeAdapterFolder({ config: modelConfig, weights, tokenizer, baseModel })
    : writeModelFolder({ config: modelConfig, weights, tokenizer, baseModel });
  const files = inMemory(folder);
  const safe = id.replace(/[^A-Za-z0-9_.-]/g, '_');
  return { name: `${safe}${partial ? '-adapter' : ''}.tar.gz`, body: tarStream(files).pipe(createGzip()) };
}

/** One file of the model's folder, streamed. */
export async function modelFile(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string, name: string): Promise<{ size: number; body: Readable }> {
  const m = await getModel(deps, actor, id);
  const f = (await folderFiles(deps, m)).find((x) => x.name === name);
  if (!f) throw new CrucibleError('not_found', `model ${m.id} has no file ${name}`, 'name');
  return { size: f.size, body: (await f.open()) as Readable };
}

/** The folder's files. A model stored before folders existed is converted in memory. */
async function folderFiles(deps: Pick<Deps, 'storage'>, m: ModelRecord): Promise<TarSource[]> {
  const prefix = keys.modelPrefix(m.projectId, m.id);
  const legacy = !m.storageKey.endsWith(DECODER_INDEX) && (await readSafetensorsHeader(deps.storage, m.storageKey)).metadata.format === CHECKPOINT_FORMAT;
  if (legacy) {
    const converted = legacyFolder(await deps.storage.get(m.storageKey), m.baseModel);
    return inMemory(converted);
  }
  const names = (await deps.storage.list(prefix)).map((k) => k.slice(prefix.length)).sort();
  return Promise.all(
    names.map(async (name) => ({
      name,
      size: (await deps.storage.size(prefix + name)) ?? 0,
      open: () => deps.storage.getStream(prefix + name),
    })),
  );
}

/** A folder built in memory as archive entries. */
function inMemory(folder: Record<string, Uint8Array>): TarSource[] {
  return Object.entries(folder).map(([name, data]) => ({ name, size: data.byteLength, open: async () => [data] }));
}

/** A crucible-checkpoint/1 model file (models stored before folders) as a Hugging Face folder. */
function legacyFolder(bytes: Uint8Array, baseModel: string) {
  const { modelConfig, weights, tokenizer } = readCheckpointFile(bytes);
  return writeModelFolder({ config: modelConfig, weights, tokenizer, baseModel });
}

// ── imports ─────────────────────────────────────────────────────────────────────────────────

export interface ImportPart {
  filename: string;
  stream: Readable;
}

/**
 * Imports a GPT-2-architecture model: each file streams to storage as it arrives (a .tar.gz or
 * .tar is unpacked on the way), then config.json, tokenizer.json and the safetensors header are
 * checked against each other, and only then does the model record exist. Any failure removes
 * every object written.
 */
export class ModelImport {
  readonly id: string;
  private readonly prefix: string;
  private readonly small = new Map<string, Buffer>();
  private readonly sizes = new Map<string, number>();

  constructor(
    private readonly deps: Pick<Deps, 'store' | 'storage'>,
    private readonly actor: Actor,
    private readonly name: string,
    private readonly maxBytes: number,
  ) {
    this.id = importedModelName(name, randomBytes(9).toString('base64url').replace(/[-_]/g, 'x'));
    this.prefix = keys.modelPrefix(actor.projectId, this.id);
  }

  /** One uploaded part: a model file, or an archive of them. */
  async add(part: ImportPart): Promise<void> {
    const lower = part.filename.toLowerCase();
    if (/\.(tar\.gz|tgz|tar)$/.test(lower)) {
      try {
        await this.addArchive(part.stream, !lower.endsWith('.tar'));
      } catch (err) {
        throw archiveError(err, part.filename);
      }
      return;
    }
    const name = basename(part.filename);
    if (!isImportFile(name)) {
      part.stream.resume();
      throw new CrucibleError('invalid_model', `unexpected file ${part.filename}: send ${IMPORT_FILES.join(', ')} (or a .tar.gz of them)`, 'file');
    }
    await this.store(name, part.stream);
  }

  /**
   * Unpacks an archive on the way to storage, with bounded cost: each entry's size is checked
   * against its limit from the header before any of it is inflated (files Crucible skips get
   * SKIPPED_ENTRY_LIMIT), everything inflated counts against the model's limit, and past 64 MiB an
   * archive may not expand more than MAX_EXPANSION-fold (a decompression bomb).
   */
  private async addArchive(stream: Readable, gzipped: boolean): Promise<void> {
    let sent = 0;
    stream.on('data', (chunk: Buffer) => {
      sent += chunk.length;
    });
    let inflated = 0;
    const total = this.maxBytes + IMPORT_FILES.length * SMALL_FILE_LIMIT;
    const charge = (n: number) => {
      inflated += n;
      if (inflated > total) throw new TarFormatError(`the archive unpacks to more than ${total} bytes`);
      if (gzipped && inflated > SMALL_FILE_LIMIT && inflated > MAX_EXPANSION * sent) {
        throw new TarFormatError(
          `the archive expands more than ${MAX_EXPANSION}-fold (${sent} bytes sent, ${inflated} unpacked so far): refused as a decompression bomb`,
        );
      }
    };
    const maxEntryBytes = (entry: string) => {
      const name = basename(entry);
      return !isImportFile(name) ? SKIPPED_ENTRY_LIMIT : isWeightsFile(name) ? this.maxBytes : SMALL_FILE_LIMIT;
    };
    const tar = gzipped ? stream.pipe(createGunzip()) : stream;
    if (gzipped) stream.on('error', (err) => tar.destroy(err));
    for await (const entry of readTar(tar, { charge, maxEntryBytes })) {
      const name = basename(entry.name);
      if (!isImportFile(name)) {
        entry.body.resume(); // README.md, vocab.json, ...: not needed
        continue;
      }
      await this.store(name, entry.body);
    }
  }

  private async store(name: string, stream: Readable): Promise<void> {
    if (this.sizes.has(name)) throw new CrucibleError('invalid_model', `${name} was sent twice`, name);
    let size = 0;
    const keep = !isWeightsFile(name);
    const chunks: Buffer[] = [];
    // the weights files together may be at most the model limit
    const weightsSoFar = [...this.sizes].filter(([n]) => isWeightsFile(n)).reduce((a, [, b]) => a + b, 0);
    const limit = keep ? SMALL_FILE_LIMIT : this.maxBytes - weightsSoFar;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > limit)
          return cb(
            new CrucibleError(
              'file_too_large',
              keep ? `${name} exceeds ${limit} bytes` : `the weights exceed the model limit of ${limit + weightsSoFar} bytes`,
              name,
            ),
          );
        if (keep) chunks.push(chunk);
        cb(null, chunk);
      },
    });
    const body = new PassThrough();
    stream.on('error', (err) => counter.destroy(err));
    stream.pipe(counter).pipe(body);
    counter.on('error', (err) => body.destroy(err));
    await this.deps.storage.putStream(this.prefix + name, body);
    this.sizes.set(name, size);
    if (keep) this.small.set(name, Buffer.concat(chunks));
  }

  /** Checks the files against each other and creates the model record. */
  async finish(): Promise<ModelObject> {
    for (const need of ['config.json', 'tokenizer.json']) {
      if (!this.sizes.has(need)) throw new CrucibleError('invalid_model', `the import lacks ${need}`, need);
    }
    const configDoc = parseJsonFile(this.small.get('config.json') as Buffer, 'config.json');
    const type = configDoc.model_type;
    if (!IMPORT_MODEL_TYPES.includes(type as string)) {
      throw new CrucibleError(
        'invalid_model',
        `config.json: model_type ${JSON.stringify(type ?? null)} is not supported (supported: ${IMPORT_MODEL_TYPES.join(', ')})`,
        'config.json',
      );
    }
    if ((DECODER_FAMILIES as readonly string[]).includes(type as string)) return this.finishDecoder(configDoc);
    if (!this.sizes.has('model.safetensors')) throw new CrucibleError('invalid_model', 'the import lacks model.safetensors', 'model.safetensors');
    try {
      const config = readModelConfig(this.small.get('config.json') as Buffer);
      if (config.arch !== 'gpt' || config.peft) throw new ModelFormatError('config.json: only plain GPT-2-architecture models can be imported', 'config.json');
      const tokenizer = readTokenizer(this.small.get('tokenizer.json') as Buffer);
      if (tokenizer.vocabSize > config.vocabSize) {
        throw new ModelFormatError(`tokenizer.json has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${config.vocabSize}`, 'tokenizer.json');
      }
      const key = `${this.prefix}model.safetensors`;
      const size = this.sizes.get('model.safetensors') as number;
      // the layout (offsets inside the file, no overlap, dtype x shape = bytes) before the config
      const { entries } = await readSafetensorsHeader(this.deps.storage, key, size);
      checkGpt2Header(config, entries);
      let bytes = [...this.sizes.values()].reduce((a, b) => a + b, 0);
      for (const [name, doc] of Object.entries(tokenizerSideFiles(tokenizer, config.blockSize))) {
        if (this.sizes.has(name)) continue;
        const data = new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`);
        await this.deps.storage.put(this.prefix + name, data);
        bytes += data.byteLength;
      }
      return await this.createRecord(config, key, bytes);
    } catch (err) {
      if (err instanceof ModelFormatError) throw new CrucibleError('invalid_model', err.message, err.file);
      if (err instanceof SafetensorsError)
        throw new CrucibleError('invalid_model', `model.safetensors: ${err.message.replace(/^safetensors: /, '')}`, 'model.safetensors');
      throw err;
    }
  }

  /**
   * A Llama, Qwen2 or Qwen3 folder: its config read as transformers reads it, its tokenizer run
   * by HfTokenizer, and every weights file's header (one file, or the shards an index maps)
   * checked against the config; the files are kept as sent, so that exporting an imported model
   * gives them back byte for byte.
   */
  private async finishDecoder(configDoc: Record<string, unknown>): Promise<ModelObject> {
    try {
      const config = decoderConfigFromHf(configDoc);
      const tokenizerConfig = this.small.has('tokenizer_config.json')
        ? parseJsonFile(this.small.get('tokenizer_config.json') as Buffer, 'tokenizer_config.json')
        : undefined;
      let tokenizer: ReturnType<typeof tokenizerFromJSON>;
      try {
        tokenizer = tokenizerFromJSON(new TextDecoder().decode(this.small.get('tokenizer.json')), tokenizerConfig);
      } catch (err) {
        if (err instanceof UnsupportedTokenizerError) throw new ModelFormatError(`tokenizer.json: ${err.message}`, 'tokenizer.json');
        throw new ModelFormatError(`tokenizer.json: ${(err as Error).message}`, 'tokenizer.json');
      }
      checkTokenizerFits(config, tokenizer.vocabSize);
      const shards = [...this.sizes.keys()].filter((n) => DECODER_SHARD.test(n));
      let weightMap: Record<string, unknown> | undefined;
      let files: string[];
      if (this.sizes.has(DECODER_INDEX)) {
        const index = parseJsonFile(this.small.get(DECODER_INDEX) as Buffer, DECODER_INDEX);
        weightMap = index.weight_map as Record<string, unknown>;
        if (typeof weightMap !== 'object' || weightMap === null) throw new ModelFormatError(`${DECODER_INDEX}: weight_map must be an object`, DECODER_INDEX);
        files = [...new Set(Object.values(weightMap))] as string[];
        for (const f of files)
          if (!this.sizes.has(f)) throw new ModelFormatError(`${DECODER_INDEX} maps weights to ${f}, which the import lacks`, DECODER_INDEX);
        for (const f of shards) if (!files.includes(f)) throw new ModelFormatError(`${f} is not in ${DECODER_INDEX}'s weight_map`, f);
      } else {
        if (shards.length) throw new ModelFormatError(`shards (${shards[0]}, ...) need their ${DECODER_INDEX}`, DECODER_INDEX);
        if (!this.sizes.has('model.safetensors'))
          throw new ModelFormatError('the import lacks model.safetensors (or a sharded checkpoint with its index)', 'model.safetensors');
        files = ['model.safetensors'];
      }
      const headers = new Map<string, Map<string, SafetensorsEntry>>();
      for (const f of files) headers.set(f, (await readSafetensorsHeader(this.deps.storage, this.prefix + f, this.sizes.get(f))).entries);
      checkDecoderHeaders(config, headers, weightMap);
      const bytes = [...this.sizes.values()].reduce((a, b) => a + b, 0);
      return await this.createRecord(config, `${this.prefix}${files.length > 1 || weightMap ? DECODER_INDEX : 'model.safetensors'}`, bytes);
    } catch (err) {
      if (err instanceof ModelFormatError) throw new CrucibleError('invalid_model', err.message, err.file);
      if (err instanceof SafetensorsError)
        throw new CrucibleError('invalid_model', err.message.replace(/^safetensors: /, 'safetensors: '), 'model.safetensors');
      throw err;
    }
  }

  /** The model record, taking the real size in place of the reservation, checked against the quota. */
  private async createRecord(config: ModelConfig, storageKey: string, bytes: number): Promise<ModelObject> {
    const quota = this.actor.limits.maxStorageBytes;
    const record = await this.deps.store.models.createImported(
      {
        id: this.id,
        projectId: this.actor.projectId,
        baseModel: rootModelName(this.id),
        arch: config.arch,
        config: { ...config },
        source: 'imported',
        peft: null,
        storageKey,
      },
      bytes,
      this.id,
      quota,
    );
    if ('used' in record) throw storageRefusal(quota, record.used, 'file');
    return modelObject(record);
  }

  /**
   * Holds the import's storage from its start (atomically: parallel imports and uploads cannot
   * pass MAX_STORAGE_BYTES together): `declaredBytes`, the request's size, or the most an import
   * may be. Refused at once when the quota has no room.
   */
  async begin(declaredBytes: number | undefined): Promise<void> {
    const quota = this.actor.limits.maxStorageBytes;
    const hold = Math.min(declaredBytes ?? Number.POSITIVE_INFINITY, this.maxBytes + IMPORT_FILES.length * SMALL_FILE_LIMIT);
    const refused = await this.deps.store.projects.reserveStorage(
      { id: this.id, projectId: this.actor.projectId, bytes: hold, storagePrefix: this.prefix },
      quota,
    );
    if (refused) throw storageRefusal(quota, refused.used, 'file');
  }

  /** Removes whatever was written (after a failure), and the storage it held. */
  async discard(): Promise<void> {
    await this.deps.storage.deletePrefix(this.prefix).catch(() => {});
    await this.deps.store.projects.releaseStorage(this.actor.projectId, this.id).catch(() => {}); // else the sweeper removes it
  }
}
