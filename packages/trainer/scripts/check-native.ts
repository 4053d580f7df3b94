// Checks the native CPU backend where it is installed (the worker image runs this at build time):
// the addon loads, a small GPT's loss and gradients on it match the pure-JS cpu backend, and a few
// training steps lower the loss. Prints the instruction set, the product libraries built in, BLAS and
// CPU features; exits 1 on failure. CRUCIBLE_NATIVE_ADDON=path/to/crucible_native.node checks another build.
// Usage: npm run check:native
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { modelConfig } from '../src/config';
import { Transformer } from '../src/model';
import { Optimizer } from '../src/optim';
import { batchLoss } from '../src/train';

try {
  const choice = await initBackend('native', () => {}, {});
  console.log(
    `native backend: ${choice.native?.isa}; products: ${choice.native?.gemm} of ${choice.native?.gemmLibraries.join(', ')}; BLAS: ${choice.native?.blas}; ${choice.threads} threads`,
  );
  console.log(
    `CPU features: ${Object.entries(choice.native?.features ?? {})
      .map(([k, v]) => `${k} ${v ? 'yes' : 'no'}`)
      .join(', ')}`,
  );
  const model = Transformer.create(modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 16, blockSize: 8 }, 13), 7);
  const batch = { B: 2, T: 8, x: Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 13), y: Int32Array.from({ length: 16 }, (_, i) => (i * 5 + 1) % 13) };
  const lossAndGrads = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => batchLoss(model, batch, false), [...model.params.values()]);
      return [value.dataSync()[0] as number, ...Object.values(grads).flatMap((g) => Array.from(g.dataSync()))];
    });
  const native = lossAndGrads();
  await tf.setBackend('cpu');
  const reference = lossAndGrads();
  await tf.setBackend('native');
  const worst = Math.max(...native.map((v, i) => Math.abs(v - (reference[i] as number)) / (1 + Math.abs(reference[i] as number))));
  if (!(worst < 1e-4)) throw new Error(`native loss and gradients differ from the cpu backend's by ${worst}`);
  const opt = new Optimizer({ kind: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  const losses: number[] = [];
  for (let s = 0; s < 5; s++) {
    const { value, grads } = tf.variableGrads(() => batchLoss(model, batch, true), [...model.params.values()]);
    losses.push(value.dataSync()[0] as number);
    opt.step(model.params, new Map([...model.params].map(([n, v]) => [n, grads[v.name] as tf.Tensor])), 1e-2);
    tf.dispose([value, ...Object.values(grads)]);
  }
  if (!((losses.at(-1) as number) < (losses[0] as number))) throw new Error(`training did not lower the loss: ${losses.join(', ')}`);
  console.log(
    `ok: matches the cpu backend (worst relative difference ${worst.toExponential(1)}); loss ${losses[0]?.toFixed(3)} -> ${losses.at(-1)?.toFixed(3)} in 5 steps`,
  );
} catch (err) {
  console.error(`native backend check failed: ${(err as Error).message}`);
  process.exit(1);
}
