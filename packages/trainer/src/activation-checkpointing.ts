// Activation checkpointing: a block's forward pass keeps none of its intermediate tensors for the
// backward pass, only its input; the backward pass runs the block again, this time on a tape, and
// differentiates that. Memory for activations falls from every intermediate of every layer to one
// tensor per layer plus one layer's intermediates, for about one more forward pass of time.

import * as tf from '@tensorflow/tfjs';

/** The engine's tape, which a gradient computed inside a gradient function would otherwise replace. */
interface EngineWithTape {
  state: { activeTape: unknown };
}

/**
 * block(x, consts), whose backward pass recomputes it. `consts` are other tensors the block reads
 * (they are saved and handed back to the recomputation; their gradients are zero); `params` are the
 * trainable tensors it reads through closures (variables), whose gradients flow out. Frozen
 * parameters need not be listed: their gradients are never computed.
 */
export function recomputedInBackward(
  block: (x: tf.Tensor, consts: tf.Tensor[]) => tf.Tensor,
  x: tf.Tensor,
  consts: tf.Tensor[],
  params: tf.Tensor[],
): tf.Tensor {
  const nConsts = consts.length;
  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const inputs = args as tf.Tensor[];
    const input = inputs[0] as tf.Tensor;
    const saved = inputs.slice(1, 1 + nConsts);
    save([input, ...saved]);
    // the engine runs this with its tape off: nothing inside is kept for the backward pass
    const value = tf.tidy(() => block(input, saved));
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], kept: tf.Tensor[]) => {
        const [x0, ...c0] = kept as [tf.Tensor, ...tf.Tensor[]];
        const engine = tf.engine() as unknown as EngineWithTape;
        const outer = engine.state.activeTape;
        let grads: tf.Tensor[];
        try {
          grads = tf.grads((...xs: tf.Tensor[]) => block(xs[0] as tf.Tensor, c0))([x0, ...params], dy as tf.Tensor);
        } finally {
          // the inner computation started a tape of its own and dropped it when done
          engine.state.activeTape = outer;
        }
        const [dx, ...dparams] = grads;
        // float32 zeros whatever a constant's dtype (an int32 one too: tfjs takes float32 gradients only)
        return [dx as tf.Tensor, ...c0.map((c) => tf.zeros(c.shape)), ...dparams];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, ...consts, ...params) as tf.Tensor;
}
