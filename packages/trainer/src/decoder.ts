// The llama architecture's forward pass (Llama, Qwen2, Qwen3, SmolLM), as transformers computes
// it: token embeddings, then per layer x += o_proj(attention(RoPE(q), RoPE(k), v)) over
// RMSNorm(x), and x += down_proj(silu(gate_proj(h)) * up_proj(h)) over RMSNorm(x); a final
// RMSNorm. Weights are [out, in] (nn.Linear), so every projection multiplies by the transpose.

import { decoderOf } from '@crucible/model-files';
import type { ModelConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { recomputedInBackward } from './activation-checkpointing';
import { decoderAttention, rmsNorm, rope, swiglu } from './decoder-ops';
import { cachedCausalMask, type DecodeSegments, type KvCache, segmentPositions } from './kv-cache';
import { dropout, linear } from './ops';
import type { PackedAttention } from './packing';
import { mixSeed } from './rng';
import { spanAdapters, withSpanLora } from './span-lora';

export interface DecoderContext {
  param: (name: string) => tf.Tensor;
  /** cos and sin tables [T, headDim] for positions at..at+T-1. */
  rope: (T: number, at?: number) => { cos: tf.Tensor2D; sin: tf.Tensor2D };
  /** The (T, T) additive causal mask. */
  causalMask: (T: number) => tf.Tensor;
  /** LoRA on these modules: W x + scale * B(A(dropout(x))), A [rank, in] and B [out, rank] as PEFT stores them. */
  lora?: { targets: ReadonlySet<string>; scale: number; dropout: number; seed: number };
  /**
   * Activation checkpointing: each layer keeps only its input for the backward pass, which runs the
   * layer again. `trainable(prefix)`: the trainable parameters whose names start with prefix.
   */
  checkpoint?: { trainable: (prefix: string) => tf.Tensor[] };
}

/**
 * idx [B, T] -> final hidden states [B, T, C] (after the last RMSNorm). `attentionMask` [B, T]: 0
 * marks padding keys. With a cache, idx holds positions cache.length.. and attends to the cache.
 */
export function decoderHidden(
  c: ModelConfig,
  ctx: DecoderContext,
  idx: tf.Tensor2D,
  attentionMask?: tf.Tensor2D,
  cache?: KvCache,
  /** Packed examples: each token's position in its example, each query's first key, the [B, 1, T, T] mask (tfjs ops only). */
  packed?: PackedAttention,
  /** Several sequences' new tokens, each span over its own cache (kv-cache.ts). */
  segments?: DecodeSegments,
): tf.Tensor3D {
  return tf.tidy(() => {
    const d = decoderOf(c);
    const [B, T] = idx.shape;
    const C = c.dModel;
    const H = c.nHead;
    const Hkv = d.nKvHead;
    const hd = d.headDim;
    const p = ctx.param;
    const opt = (name: string, present: boolean) => (present ? p(name) : undefined);
    const offset = cache?.length ?? 0;
    // packed examples each start at position 0: the tables per token, [B, T, hd]
    const segs = segments ? segmentPositions(segments) : undefined;
    const spans = segs && spanAdapters(segments, segs.starts);
    const tables = packed
      ? perToken(ctx.rope(c.blockSize), packed.positions, B, T)
      : segs
        ? rows(ctx.rope(c.blockSize), tf.tensor1d(segs.positions, 'int32')) // B = 1: row t for token t, the fused kernel's layout
        : ctx.rope(T, offset);
    const keyBias = attentionMask ? (tf.mul(tf.sub(1, tf.cast(attentionMask, 'float32')), -1e9) as tf.Tensor2D) : undefined;

    // One layer: x -> x + attention(RMSNorm(x)) -> + MLP(RMSNorm(.)). The tensors it reads that are
    // not parameters come in `consts` ([cos, sin, keyBias?]), so that a recomputation reads the
    // copies the backward pass saved.
    const layer = (l: number, x: tf.Tensor, consts: tf.Tensor[]): tf.Tensor => {
      const [cos, sin, ...rest] = consts as [tf.Tensor, tf.Tensor, ...tf.Tensor[]];
      let at = 0;
      const bias = keyBias ? (rest[at++] as tf.Tensor2D) : undefined;
      const keyStart = packed ? (rest[at++] as tf.Tensor2D) : undefined;
      const fullMask = packed?.mask ? rest[at++] : undefined;
      const h = `model.layers.${l}.`;
      let drops = 0;
      const proj = (input: tf.Tensor, name: string, hasBias: boolean) => {
        const base = linear(input, p(`${name}.weight`), opt(`${name}.bias`, hasBias), true);
        // each span's own adapter (continuous batching across LoRA fine-tunes of this model)
        const y = spans ? withSpanLora(base, input, spans, name, name.slice(name.lastIndexOf('.') + 1), 'llama') : base;
        const lora = ctx.lora;
        if (!lora?.targets.has(name.slice(name.lastIndexOf('.') + 1))) return y;
        const xin = lora.dropout > 0 ? dropout(input, lora.dropout, mixSeed(lora.seed, 1000 + 16 * l + drops++)) : input;
        const xa = linear(xin, p(`${name}.lora_A.weight`), undefined, true);
        return tf.add(y, tf.mul(linear(xa, p(`${name}.lora_B.weight`), undefined, true), lora.scale));
      };
      const a = rmsNorm(x, p(`${h}input_layernorm.weight`), d.rmsNormEps);
      // [B, T, n * hd] -> [B, T, n, hd] -> (Qwen3: RMSNorm per head) -> RoPE -> [B, T, n * hd]
      const rotated = (t: tf.Tensor, n: number, norm?: string) => {
        let r = t.reshape([B, T, n, hd]);
        if (norm) r = rmsNorm(r, p(`${h}self_attn.${norm}.weight`), d.rmsNormEps);
        return rope(r as tf.Tensor4D, cos, sin).reshape([B, T, n * hd]) as tf.Tensor3D;
      };
      const q = rotated(proj(a, `${h}self_attn.q_proj`, d.qkvBias), H, d.qkNorm ? 'q_norm' : undefined);
      const k = rotated(proj(a, `${h}self_attn.k_proj`, d.qkvBias), Hkv, d.qkNorm ? 'k_norm' : undefined);
      const v = proj(a, `${h}self_attn.v_proj`, d.qkvBias) as tf.Tensor3D;
      let y: tf.Tensor3D;
      if (segments && segs) {
        // each span over its own cache
        const span = (t: tf.Tensor3D, s: number) => t.slice([0, segs.starts[s] as number, 0], [1, segments.lengths[s] as number, t.shape[2]]) as tf.Tensor3D;
        const parts = segments.caches.map((kc, s) => {
          const n = segments.lengths[s] as number;
          const kv = kc.append(l, span(k, s), span(v, s), 1);
          return decoderAttention(span(q, s), kv.k, kv.v, H, Hkv, { offset: kc.length, mask: () => cachedCausalMask(kc.length, n) });
        });
        y = (parts.length === 1 ? parts[0] : tf.concat(parts, 1)) as tf.Tensor3D;
      } else {
        const kv = cache ? cache.append(l, k, v, 1) : { k, v };
        const mask = () => (cache ? cachedCausalMask(offset, T) : ctx.causalMask(T));
        y = decoderAttention(q, kv.k, kv.v, H, Hkv, { offset, mask, keyBias: bias, fullMask, keyStart });
      }
      const mid = tf.add(x, proj(y, `${h}self_attn.o_proj`, d.oBias));
      const m = rmsNorm(mid, p(`${h}post_attention_layernorm.weight`), d.rmsNormEps);
      const inner = swiglu(proj(m, `${h}mlp.gate_proj`, d.mlpBias), proj(m, `${h}mlp.up_proj`, d.mlpBias));
      return tf.add(mid, proj(inner, `${h}mlp.down_proj`, d.mlpBias));
    };

    const consts = [tables.cos, tables.sin, ...(keyBias ? [keyBias] : []), ...(packed ? [packed.keyStart] : []), ...(packed?.mask ? [packed.mask] : [])];
    let x: tf.Tensor = tf.gather(p('model.embed_tokens.weight'), idx.reshape([-1])).reshape([B, T, C]);
    for (let l = 0; l < c.nLayer; l++) {
      const checkpoint = ctx.checkpoint;
      const input = x;
      // a scope per layer: what the backward pass does not keep is freed now, not after the last layer
      x = tf.tidy(() =>
        checkpoint
          ? recomputedInBackward((xin, saved) => layer(l, xin, saved), input, consts, checkpoint.trainable(`model.layers.${l}.`))
          : layer(l, input, consts),
      );
    }
    cache?.advance(T);
    segments?.caches.forEach((kc, s) => {
      kc.advance(segments.lengths[s] as number);
    });
    return rmsNorm(x, p('model.norm.weight'), d.rmsNormEps) as tf.Tensor3D;
  });
}

/** RoPE tables of positions 0..blockSize-1 picked per position: [N, hd]. */
function rows(tables: { cos: tf.Tensor2D; sin: tf.Tensor2D }, positions: tf.Tensor1D): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  return { cos: tf.gather(tables.cos, positions), sin: tf.gather(tables.sin, positions) };
}

/** RoPE tables of positions 0..blockSize-1 picked per token: [B, T, hd]. */
function perToken(tables: { cos: tf.Tensor2D; sin: tf.Tensor2D }, positions: tf.Tensor1D, B: number, T: number): { cos: tf.Tensor; sin: tf.Tensor } {
  const hd = tables.cos.shape[1];
  const r = rows(tables, positions);
  return { cos: r.cos.reshape([B, T, hd]), sin: r.sin.reshape([B, T, hd]) };
}
