// bf16 copies of a model's weight matrices for the products of a training step in bf16: converted
// once per optimizer step (trainable weights) or once per run (frozen ones, e.g. a LoRA run's base),
// instead of being rounded again by every product that packs them. The addon reads a copy for any
// product operand that lies inside a registered weight (setBf16Copies), so the forward products, the
// input gradients' products and the head read half the bytes and round nothing. The numbers are the
// same bit for bit: a copy is rounded as the packing rounds. Master weights stay float32.
//
// The copies are registered only while `during` runs (the forward and backward passes of a step):
// the optimizer then updates the float32 weights, in place where it can, and the next step converts
// them again. NATIVE_BF16_COPIES=0 turns the copies off (weights rounded per product, half the
// weights' memory less).
import type * as tf from '@tensorflow/tfjs';
import { fusedKernels, nativeKernels, valuesOf } from './native-backend';

interface Copy {
  values: Float32Array;
  dataId: object;
  copy: Uint16Array;
}

export class Bf16Weights {
  private readonly copies = new Map<string, Copy>();
  /** Weights converted so far (tests: trainable ones once per step, frozen ones once). */
  conversions = 0;

  /**
   * Runs `fn` (synchronous) with bf16 copies of `params`' matrices registered: those in `trainable`
   * converted now, the others converted the first time they are seen (again only if their values
   * were replaced). Outside the bf16 mode on Crucible's kernel, just runs `fn`.
   */
  during<T>(params: ReadonlyMap<string, tf.Variable>, trainable: ReadonlySet<tf.Variable>, fn: () => T): T {
    const k = nativeKernels();
    // copies are made for bf16 products on Crucible's kernel, unless turned off
    if (!k || !fusedKernels() || process.env.NATIVE_BF16_COPIES === '0' || !k.info().bf16Copies) return fn();
    const arrays: Float32Array[] = [];
    const copies: Uint16Array[] = [];
    for (const [name, p] of params) {
      if (p.rank !== 2 || p.dtype !== 'float32' || Math.min(...p.shape) < 2) continue;
      const values = valuesOf(p);
      let c = this.copies.get(name);
      const fresh = !c || c.values !== values || c.dataId !== p.dataId;
      if (!c || c.copy.length !== values.length) c = { values, dataId: p.dataId, copy: new Uint16Array(values.length) };
      if (fresh || trainable.has(p)) {
        k.toBf16(values, c.copy, values.length);
        this.conversions += 1;
      }
      c.values = values;
      c.dataId = p.dataId;
      this.copies.set(name, c);
      arrays.push(values);
      copies.push(c.copy);
    }
    k.setBf16Copies(arrays, copies);
    try {
      return fn();
    } finally {
      k.setBf16Copies([], []);
    }
  }
}
