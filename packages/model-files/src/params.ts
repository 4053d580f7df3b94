// The parameters a config implies: names, shapes and initializations, in a fixed order. The
// trainer builds models from this list and the file readers check files against it, so a name
// is spelled in one place. Adapter parameters (LoRA, bottleneck) follow the base parameters.

import type { ModelConfig } from '@crucible/training-config';
import { decoderLoraSpecs, decoderParamSpecs } from './hf-decoder';

/** lora_a: uniform in +-1/sqrt(in) for A stored [in, rank]; lora_a_t: the same for A stored [rank, in] (PEFT's layout). */
export type ParamInit = 'normal' | 'proj' | 'zeros' | 'ones' | 'lora_a' | 'lora_a_t';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: ParamInit;
}

/** [in, out] of each linear layer LoRA can adapt. */
export function loraTargetDims(c: ModelConfig): Record<'attn.c_attn' | 'attn.c_proj' | 'mlp.c_fc' | 'mlp.c_proj', [number, number]> {
  const C = c.dModel;
  const H = C * c.ffnMult;
  return { 'attn.c_attn': [C, 3 * C], 'attn.c_proj': [C, C], 'mlp.c_fc': [C, H], 'mlp.c_proj': [H, C] };
}

export function paramSpecs(c: ModelConfig): ParamSpec[] {
  return [...baseParamSpecs(c), ...adapterParamSpecs(c)];
}

/** Bytes of a config's parameters in float32 (what a loaded model holds). */
export function weightBytes(c: ModelConfig): number {
  return paramSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * 4, 0);
}

/** The base model's parameters (what a GPT-2 or BERT file holds). */
export function baseParamSpecs(c: ModelConfig): ParamSpec[] {
  if (c.arch === 'llama') return decoderParamSpecs(c);
  const C = c.dModel;
  const H = C * c.ffnMult;
  const specs: ParamSpec[] = [
    { name: 'wte.weight', shape: [c.vocabSize, C], init: 'normal' },
    { name: 'wpe.weight', shape: [c.blockSize, C], init: 'normal' },
  ];
  const add = (name: string, shape: number[], init: ParamInit) => specs.push({ name, shape, init });
  const ln = (prefix: string) => {
    add(`${prefix}.weight`, [C], 'ones');
    if (c.bias) add(`${prefix}.bias`, [C], 'zeros');
  };
  const lin = (prefix: string, inDim: number, outDim: number, init: ParamInit) => {
    add(`${prefix}.weight`, [inDim, outDim], init);
    if (c.bias) add(`${prefix}.bias`, [outDim], 'zeros');
  };
  for (let l = 0; l < c.nLayer; l++) {
    ln(`h.${l}.ln_1`);
    lin(`h.${l}.attn.c_attn`, C, 3 * C, 'normal');
    lin(`h.${l}.attn.c_proj`, C, C, 'proj');
    ln(`h.${l}.ln_2`);
    lin(`h.${l}.mlp.c_fc`, C, H, 'normal');
    lin(`h.${l}.mlp.c_proj`, H, C, 'proj');
  }
  ln('ln_f');
  if (c.arch === 'bert') {
    lin('mlm_head.dense', C, C, 'normal');
    ln('mlm_head.ln');
    add('mlm_head.bias', [c.vocabSize], 'zeros');
  }
  if (!c.tiedEmbeddings) add('lm_head.weight', [c.vocabSize, C], 'normal');
  return specs;
}

/**
 * LoRA: h.N.<target>.lora_A.weight [in, rank] (random) and lora_B.weight [rank, out] (zeros).
 * Bottleneck: h.N.adapter_{attn,mlp}.{down,up}.{weight,bias}; up is zeros. Either way the
 * adapted model equals the base model before its first update.
 */
export function adapterParamSpecs(c: ModelConfig): ParamSpec[] {
  const p = c.peft;
  if (!p) return [];
  if (c.arch === 'llama') return decoderLoraSpecs(c);
  const specs: ParamSpec[] = [];
  const C = c.dModel;
  for (let l = 0; l < c.nLayer; l++) {
    if (p.type === 'lora') {
      const dims = loraTargetDims(c);
      for (const t of p.targets) {
        if (!(t in dims)) throw new Error(`LoRA target ${t} is not a module of a gpt model (${Object.keys(dims).join(', ')})`);
        const [inDim, outDim] = dims[t as keyof typeof dims];
        specs.push({ name: `h.${l}.${t}.lora_A.weight`, shape: [inDim, p.rank], init: 'lora_a' });
        specs.push({ name: `h.${l}.${t}.lora_B.weight`, shape: [p.rank, outDim], init: 'zeros' });
      }
    } else {
      for (const where of ['attn', 'mlp']) {
        specs.push({ name: `h.${l}.adapter_${where}.down.weight`, shape: [C, p.size], init: 'normal' });
        specs.push({ name: `h.${l}.adapter_${where}.down.bias`, shape: [p.size], init: 'zeros' });
        specs.push({ name: `h.${l}.adapter_${where}.up.weight`, shape: [p.size, C], init: 'zeros' });
        specs.push({ name: `h.${l}.adapter_${where}.up.bias`, shape: [C], init: 'zeros' });
      }
    }
  }
  return specs;
}
