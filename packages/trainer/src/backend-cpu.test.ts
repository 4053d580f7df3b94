// TFJS_BACKEND-style override: the pure-JS cpu backend trains too (gradients registered).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { modelConfig } from './config';
import { Transformer } from './model';
import { batchLoss } from './train';

describe('a named backend', () => {
  it('uses exactly that backend and computes gradients on it', async () => {
    const choice = await initBackend('cpu');
    expect(choice).toMatchObject({ requested: 'cpu', name: 'cpu' });
    expect(tf.getBackend()).toBe('cpu');
    const model = Transformer.create(modelConfig({ arch: 'gpt', nLayer: 1, nHead: 1, dModel: 8, blockSize: 4 }, 5));
    const batch = { B: 1, T: 4, x: Int32Array.from([0, 1, 2, 3]), y: Int32Array.from([1, 2, 3, 4]) };
    const { grads } = tf.variableGrads(() => batchLoss(model, batch, true), [...model.params.values()]);
    expect(Object.keys(grads)).toHaveLength(model.params.size);
    expect(Number.isFinite(tf.norm(grads[model.param('wte.weight').name] as tf.Tensor).dataSync()[0])).toBe(true);
  });

  it('fails clearly when a named backend cannot load (here: tfjs-node, not installable offline)', () => {
    let installed = true;
    try {
      createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    } catch {
      installed = false;
    }
    if (installed) return; // on a host with tfjs-node this backend loads; nothing to check
    const cli = join(import.meta.dirname, '../bin/crucible-train.mjs');
    const r = spawnSync(process.execPath, [cli, 'sample', '--backend', 'tensorflow', '--checkpoint', '/nonexistent'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no TensorFlow\.js backend could start: tensorflow: Cannot find package '@tensorflow\/tfjs-node'/);
  });
});
