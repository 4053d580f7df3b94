// The llama architecture's forward pass (Llama, Qwen2, Qwen3, SmolLM), as transformers computes
// it: token embeddings, then per layer x += o_proj(attention(RoPE(q), RoPE(k), v)) over
// RMSNorm(x), and x += down_proj(silu(gate_proj(h)) * up_proj(h)) over RMSNorm(x); a final
// RMSNorm. Weights are [out, in] (nn.Linear), so every projection multiplies by the transpose.

import { decoderOf } from '@crucible/model-files';
import type { ModelConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { applyRope, groupedAttention, rmsNorm, swiglu } from './decoder-ops';
import { cachedCausalMask, type KvCache } from './kv-cache';
import { dropout, linear } from './ops';
import { mixSeed } from './rng';

export interface DecoderContext {
  param: (name: string) => tf.Tensor;
  /** cos and sin tables [T, headDim] for positions at..at+T-1. */
  rope: (T: number, at?: number) => { cos: tf.Tensor2D; sin: tf.Tensor2D };
  /** The (T, T) additive causal mask. */
  causalMask: (T: number) => tf.Tensor;
  /** LoRA on these modules: W x + scale * B(A(dropout(x))), A [rank, in] and B [out, rank] as PEFT stores them. */
  lora?: { targets: ReadonlySet<string>; scale: number; dropout: number; seed: number };
}

/**
 * idx [B, T] -> final hidden states [B, T, C] (after the last RMSNorm). `attentionMask` [B, T]: 0
 * marks padding keys. With a cache, idx holds positions cache.length.. and attends to the cache.
 */
export function decoderHidden(c: ModelConfig, ctx: DecoderContext, idx: tf.Tensor2D, attentionMask?: tf.Tensor2D, cache?: KvCache): tf.Tensor3D {
  return tf.tidy(() => {
    const d = decoderOf(c);
    const [B, T] = idx.shape;
    const C = c.dModel;
    const H = c.nHead;
    const Hkv = d.nKvHead;
    const hd = d.headDim;
    const p = ctx.param;
    const opt = (name: string, present: boolean) => (present ? p(name) : undefined);
    let drops = 0;
    const proj = (x: tf.Tensor, name: string, bias: boolean) => {
      const y = linear(x, p(`${name}.weight`), opt(`${name}.bias`, bias), true);
      const lora = ctx.lora;
      if (!lora?.targets.has(name.slice(name.lastIndexOf('.') + 1))) return y;
      const xin = lora.dropout > 0 ? dropout(x, lora.dropout, mixSeed(lora.seed, 1000 + drops++)) : x;
      const xa = linear(xin, p(`${name}.lora_A.weight`), undefined, true);
      return tf.add(y, tf.mul(linear(xa, p(`${name}.lora_B.weight`), undefined, true), lora.scale));
    };
    const offset = cache?.length ?? 0;
    const { cos, sin } = ctx.rope(T, offset);
    const mask = cache ? cachedCausalMask(offset, T) : ctx.causalMask(T);
    const keyBias = attentionMask ? (tf.mul(tf.sub(1, tf.cast(attentionMask, 'float32')), -1e9) as tf.Tensor2D) : undefined;

    let x: tf.Tensor = tf.gather(p('model.embed_tokens.weight'), idx.reshape([-1])).reshape([B, T, C]);
    for (let l = 0; l < c.nLayer; l++) {
      const h = `model.layers.${l}.`;
      const a = rmsNorm(x, p(`${h}input_layernorm.weight`), d.rmsNormEps);
      // heads: [B, T, n, hd] -> (Qwen3: RMSNorm per head) -> [B, n, T, hd] -> RoPE on q and k
      const heads = (t: tf.Tensor, n: number, norm?: string) => {
        let r = t.reshape([B, T, n, hd]);
        if (norm) r = rmsNorm(r, p(`${h}self_attn.${norm}.weight`), d.rmsNormEps);
        return r.transpose([0, 2, 1, 3]) as tf.Tensor4D;
      };
      const q = applyRope(heads(proj(a, `${h}self_attn.q_proj`, d.qkvBias), H, d.qkNorm ? 'q_norm' : undefined), cos, sin);
      const k = applyRope(heads(proj(a, `${h}self_attn.k_proj`, d.qkvBias), Hkv, d.qkNorm ? 'k_norm' : undefined), cos, sin);
      const v = heads(proj(a, `${h}self_attn.v_proj`, d.qkvBias), Hkv);
      const kv = cache ? cache.append(l, k, v) : { k, v };
      const y = groupedAttention(q, kv.k, kv.v, { mask, keyBias });
      x = tf.add(x, proj(y, `${h}self_attn.o_proj`, d.oBias));
      const m = rmsNorm(x, p(`${h}post_attention_layernorm.weight`), d.rmsNormEps);
      const inner = swiglu(proj(m, `${h}mlp.gate_proj`, d.mlpBias), proj(m, `${h}mlp.up_proj`, d.mlpBias));
      x = tf.add(x, proj(inner, `${h}mlp.down_proj`, d.mlpBias));
    }
    cache?.advance(T);
    return rmsNorm(x, p('model.norm.weight'), d.rmsNormEps) as tf.Tensor3D;
  });
}
