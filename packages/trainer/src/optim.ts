// Optimizers over a name -> variable map: AdamW (decoupled weight decay), Adam (L2 penalty added
// to the gradient, as torch.optim.Adam) and LAMB (layer-wise trust ratio). Weight decay applies to
// matrices and embeddings only, never to biases or LayerNorm gains (rank-1 parameters).
// State (step count, first and second moments) is exposed by name for checkpoints.

import { DEFAULT_OPTIMIZER, type OptimizerConfig, type OptimizerKind } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { nativeKernels, ownedValues, valuesOf } from './native-backend';

export type { OptimizerConfig, OptimizerKind };
export { DEFAULT_OPTIMIZER };

export function decays(param: tf.Variable): boolean {
  return param.rank >= 2;
}

export class Optimizer {
  readonly config: OptimizerConfig;
  /** Number of updates applied so far (t in the bias corrections). */
  t = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(config: OptimizerConfig) {
    this.config = config;
  }

  /**
   * One update. `grads` are by parameter name; `gradScale` multiplies them first (used for
   * clipping by global norm without another pass over the gradients).
   */
  step(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number, gradScale = 1): void {
    const { kind, beta1, beta2, eps, weightDecay } = this.config;
    this.t += 1;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    const k = nativeKernels();
    const kindCode = { adamw: 0, adam: 1, lamb: 2 }[kind] as 0 | 1 | 2;
    for (const [name, p] of params) {
      const g0 = grads.get(name);
      if (!g0) continue;
      const m = this.slot(this.m, name, p);
      const v = this.slot(this.v, name, p);
      const wd = decays(p) ? weightDecay : 0;
      // native backend: one fused update in place over the parameter's own buffer
      const [pv, mv, vv] = [ownedValues(p), ownedValues(m), ownedValues(v)];
      if (k && pv && mv && vv) {
        k.adamUpdate(pv, valuesOf(g0), mv, vv, p.size, kindCode, lr, beta1, beta2, eps, wd, bc1, bc2, gradScale);
        continue;
      }
      tf.tidy(() => {
        let g: tf.Tensor = gradScale === 1 ? g0 : tf.mul(g0, gradScale);
        if (kind === 'adam' && wd > 0) g = tf.add(g, tf.mul(p, wd));
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(m1);
        v.assign(v1);
        // adam direction: m_hat / (sqrt(v_hat) + eps)
        const dir = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), eps));
        if (kind === 'adamw') {
          const decayed = wd > 0 ? tf.mul(p, 1 - lr * wd) : p;
          p.assign(tf.sub(decayed, tf.mul(dir, lr)));
        } else if (kind === 'adam') {
          p.assign(tf.sub(p, tf.mul(dir, lr)));
        } else {
          const r = wd > 0 ? tf.add(dir, tf.mul(p, wd)) : dir;
          const wNorm = tf.norm(p);
          const rNorm = tf.norm(r);
          // trust = ||w|| / ||r|| when both are non-zero, else 1
          const trust = tf.where(tf.logicalAnd(tf.greater(wNorm, 0), tf.greater(rNorm, 0)), tf.div(wNorm, tf.maximum(rNorm, 1e-30)), tf.onesLike(wNorm));
          p.assign(tf.sub(p, tf.mul(r, tf.mul(trust, lr))));
        }
      });
    }
  }

  /** Restores moments and the step count (from a checkpoint). */
  restore(t: number, m: Map<string, tf.Tensor>, v: Map<string, tf.Tensor>, params: Map<string, tf.Variable>): void {
    this.t = t;
    for (const [name, p] of params) {
      const mm = m.get(name);
      const vv = v.get(name);
      if (mm) this.slot(this.m, name, p).assign(mm);
      if (vv) this.slot(this.v, name, p).assign(vv);
    }
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
    this.m.clear();
    this.v.clear();
  }

  private slot(map: Map<string, tf.Variable>, name: string, p: tf.Variable): tf.Variable {
    let s = map.get(name);
    if (!s) {
      const zeros = tf.zerosLike(p);
      s = tf.variable(zeros, false);
      zeros.dispose();
      map.set(name, s);
    }
    return s;
  }
}

/** Global L2 norm of all gradients: sqrt(sum_i ||g_i||^2). */
export function globalNorm(grads: Iterable<tf.Tensor>): number {
  const k = nativeKernels();
  if (k && tf.getBackend() === 'native') {
    let sum = 0;
    for (const g of grads) sum += k.sumSquares(valuesOf(g), g.size);
    return Math.sqrt(sum);
  }
  return tf.tidy(() => {
    const sq = [...grads].map((g) => tf.sum(tf.square(g)));
    if (sq.length === 0) return 0;
    return Math.sqrt(tf.addN(sq).dataSync()[0] as number);
  });
}
