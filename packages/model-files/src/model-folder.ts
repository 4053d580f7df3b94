// A model as a folder of files, the way the Hugging Face ecosystem lays it out. This is what
// Crucible stores for every model (trained or imported) and what a download contains:
//   model.safetensors        weights (GPT-2 names for gpt models, Crucible names for bert), metadata format "pt"
//   config.json              GPT-2's keys (gpt) or Crucible's bert config
//   tokenizer.json           Hugging Face tokenizers, every special token in model.vocab at its id
//   tokenizer_config.json, special_tokens_map.json, generation_config.json
//   adapter_model.safetensors, adapter_config.json   (models trained with LoRA or adapters)
// A LoRA model's model.safetensors holds the merged weights, so it loads anywhere as plain GPT-2;
// its adapter files load with PEFT on top of the base model.

import type { ModelConfig } from '@crucible/training-config';
import { hfDecoderConfig } from './hf-decoder';
import { configFromGpt2, fromGpt2Tensors, gpt2Config, hfName, ModelFormatError, toGpt2Tensors, tokenizerSideFiles, type Weights } from './hf-gpt2';
import { adapterParamSpecs, baseParamSpecs } from './params';
import { bottleneckToFiles, loraToPeft, mergeLora, storedConfig } from './peft';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors';
import { HfTokenizer, type Tokenizer, tokenizerFromJSON } from './tokenizer';

export type ModelFiles = Record<string, Uint8Array>;
export const BERT_MODEL_TYPE = 'crucible_bert';
export const ADAPTER_FILES = ['adapter_model.safetensors', 'adapter_config.json'] as const;

const json = (v: unknown) => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);

/** The folder of a model. `baseModel` names what adapters were trained on (adapter_config.json). */
export function writeModelFolder(input: { config: ModelConfig; weights: Weights; tokenizer: Tokenizer; baseModel: string }): ModelFiles {
  const { config: c, tokenizer } = input;
  const files: ModelFiles = {};
  const meta = { format: 'pt' };
  if (c.arch === 'llama') return writeDecoderFolder(c, input.weights, tokenizer, input.baseModel);
  if (c.arch === 'bert') {
    const tensors = new Map<string, NamedTensor>([...input.weights].map(([n, w]) => [n, { dtype: 'F32', shape: w.shape, data: w.data }]));
    files['model.safetensors'] = encodeSafetensors(tensors, meta);
    files['config.json'] = json(bertConfig(c, tokenizer));
  } else {
    const peft = c.peft;
    if (peft) {
      const adapter = peft.type === 'lora' ? loraToPeft(peft, input.weights, input.baseModel) : bottleneckToFiles(peft, input.weights, input.baseModel);
      files['adapter_model.safetensors'] = encodeSafetensors(adapter.tensors, meta);
      files['adapter_config.json'] = json(adapter.config);
    }
    const exported = storedConfig(c);
    const weights = peft?.type === 'lora' ? mergeLora(c, input.weights) : input.weights;
    files['model.safetensors'] = encodeSafetensors(toGpt2Tensors(exported, weights), meta);
    files['config.json'] = json(gpt2Config(exported, tokenizer));
  }
  files['tokenizer.json'] = new TextEncoder().encode(JSON.stringify(tokenizer.toJSON()));
  for (const [name, doc] of Object.entries(tokenizerSideFiles(tokenizer, c.blockSize))) files[name] = json(doc);
  return files;
}

/**
 * A llama-family folder transformers loads as it is: the parameters under their own names in F32,
 * config.json for the family's class, tokenizer.json as the model came with it, and its
 * tokenizer_config.json (chat template included) and generation_config.json.
 */
function writeDecoderFolder(c: ModelConfig, trained: Weights, tokenizer: Tokenizer, baseModel: string): ModelFiles {
  // a LoRA model: its adapter in PEFT's layout, and the merged weights as the model
  const adapter = c.peft?.type === 'lora' ? loraToPeft(c.peft, trained, baseModel, 'llama') : undefined;
  const weights = c.peft?.type === 'lora' ? mergeLora(c, trained) : trained;
  const tensors = new Map<string, NamedTensor>([...weights].map(([n, w]) => [n, { dtype: 'F32', shape: w.shape, data: w.data }]));
  const bos = tokenizer instanceof HfTokenizer ? tokenizer.bos : undefined;
  const eos = tokenizer.special('eot');
  const files: ModelFiles = {
    'config.json': json(hfDecoderConfig(storedConfig(c), { bos, eos, pad: tokenizer.special('pad') })),
    'model.safetensors': encodeSafetensors(tensors, { format: 'pt' }),
    'tokenizer.json': new TextEncoder().encode(JSON.stringify(tokenizer.toJSON())),
    'generation_config.json': json({ ...(bos === undefined ? {} : { bos_token_id: bos }), ...(eos === undefined ? {} : { eos_token_id: eos }) }),
  };
  if (tokenizer instanceof HfTokenizer && tokenizer.config) files['tokenizer_config.json'] = json(tokenizer.config);
  if (adapter) {
    files['adapter_model.safetensors'] = encodeSafetensors(adapter.tensors, { format: 'pt' });
    files['adapter_config.json'] = json(adapter.config);
  }
  return files;
}

/**
 * The adapter of a LoRA or bottleneck-adapter model alone, with its tokenizer files: what a
 * checkpoint that holds only its adapter weights (the base frozen) can be downloaded as. PEFT
 * loads it on top of `baseModel`.
 */
export function writeAdapterFolder(input: { config: ModelConfig; weights: Weights; tokenizer: Tokenizer; baseModel: string }): ModelFiles {
  const { config: c, tokenizer } = input;
  const peft = c.peft;
  if (!peft) throw new ModelFormatError('this model has no adapter (it was trained without LoRA or adapters)', 'peft');
  const adapter = peft.type === 'lora' ? loraToPeft(peft, input.weights, input.baseModel, c.arch) : bottleneckToFiles(peft, input.weights, input.baseModel);
  const files: ModelFiles = {
    'adapter_model.safetensors': encodeSafetensors(adapter.tensors, { format: 'pt' }),
    'adapter_config.json': json(adapter.config),
    'tokenizer.json': new TextEncoder().encode(JSON.stringify(tokenizer.toJSON())),
  };
  if (tokenizer instanceof HfTokenizer) {
    if (tokenizer.config) files['tokenizer_config.json'] = json(tokenizer.config);
  } else for (const [name, doc] of Object.entries(tokenizerSideFiles(tokenizer, c.blockSize))) files[name] = json(doc);
  return files;
}

function bertConfig(c: ModelConfig, tokenizer: Tokenizer): Record<string, unknown> {
  return {
    model_type: BERT_MODEL_TYPE,
    architectures: ['CrucibleBertForMaskedLM'],
    vocab_size: c.vocabSize,
    pad_token_id: tokenizer.special('pad') ?? null,
    mask_token_id: tokenizer.special('mask') ?? null,
    crucible: { format_version: 1, model: c },
  };
}

/** Parses a config.json of either architecture. */
export function readModelConfig(bytes: Uint8Array): ModelConfig {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new ModelFormatError(`config.json is not valid JSON: ${(err as Error).message}`, 'config.json');
  }
  if (typeof doc !== 'object' || doc === null) throw new ModelFormatError('config.json is not a JSON object', 'config.json');
  if (doc.model_type === BERT_MODEL_TYPE) return bertModelConfig(doc);
  return configFromGpt2(doc);
}

/** The model config a Crucible BERT config.json carries, checked field by field. */
function bertModelConfig(doc: Record<string, unknown>): ModelConfig {
  const fail = (why: string): never => {
    throw new ModelFormatError(`config.json: ${why}`, 'config.json');
  };
  const model = (doc.crucible as { model?: unknown } | undefined)?.model;
  if (typeof model !== 'object' || model === null || Array.isArray(model))
    return fail(`model_type ${BERT_MODEL_TYPE} needs crucible.model (the model's config)`);
  const m = model as Record<string, unknown>;
  if (m.arch !== 'bert') fail(`crucible.model.arch must be "bert", got ${JSON.stringify(m.arch)}`);
  for (const k of ['vocabSize', 'nLayer', 'nHead', 'dModel', 'blockSize', 'ffnMult'] as const) {
    if (!Number.isSafeInteger(m[k]) || (m[k] as number) <= 0) fail(`crucible.model.${k} must be a positive integer, got ${JSON.stringify(m[k])}`);
  }
  if ((m.dModel as number) % (m.nHead as number) !== 0) fail('crucible.model.dModel must be divisible by nHead');
  if (typeof m.dropout !== 'number' || !(m.dropout >= 0 && m.dropout < 1)) fail('crucible.model.dropout must be a number in [0, 1)');
  if (typeof m.bias !== 'boolean' || typeof m.tiedEmbeddings !== 'boolean') fail('crucible.model.bias and tiedEmbeddings must be booleans');
  return m as unknown as ModelConfig;
}

/** tokenizer.json (with tokenizer_config.json when there is one: it names the special tokens' roles). */
export function readTokenizer(bytes: Uint8Array, configBytes?: Uint8Array): Tokenizer {
  try {
    const config = configBytes ? (JSON.parse(new TextDecoder().decode(configBytes)) as Record<string, unknown>) : undefined;
    return tokenizerFromJSON(new TextDecoder().decode(bytes), config);
  } catch (err) {
    throw new ModelFormatError(`tokenizer.json: ${(err as Error).message}`, 'tokenizer.json');
  }
}

/** A stored or imported folder back to a config, weights (adapters included) and tokenizer. */
export function readModelFolder(files: Pick<ModelFiles, 'model.safetensors' | 'config.json' | 'tokenizer.json'> & Partial<ModelFiles>): {
  config: ModelConfig;
  weights: Weights;
  tokenizer: Tokenizer;
} {
  const config = readModelConfig(files['config.json']);
  const tokenizer = readTokenizer(files['tokenizer.json']);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new ModelFormatError(`tokenizer.json has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${config.vocabSize}`, 'tokenizer.json');
  }
  const { tensors } = decodeSafetensors(files['model.safetensors']);
  let weights: Weights;
  if (config.arch === 'bert') {
    weights = new Map();
    for (const s of baseParamSpecs(config)) {
      const t = tensors.get(s.name);
      if (!t || t.shape.join(',') !== s.shape.join(','))
        throw new ModelFormatError(`model.safetensors: ${s.name} is missing or has the wrong shape`, 'model.safetensors');
      weights.set(s.name, { shape: s.shape, data: t.data as Float32Array });
    }
  } else {
    const adapterSpecs = adapterParamSpecs(config);
    const adapterKeys = new Set(adapterSpecs.map((s) => hfName(s.name)));
    weights = fromGpt2Tensors(config, new Map([...tensors].filter(([n]) => !adapterKeys.has(n))));
    for (const s of adapterSpecs) {
      const t = tensors.get(hfName(s.name));
      if (!t) throw new ModelFormatError(`model.safetensors lacks the adapter tensor ${hfName(s.name)}`, 'model.safetensors');
      weights.set(s.name, { shape: s.shape, data: t.data as Float32Array });
    }
  }
  return { config, weights, tokenizer };
}
