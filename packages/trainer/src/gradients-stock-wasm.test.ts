// The stock wasm kernels (no native addon: what a machine without a C compiler runs): gradients,
// which there use explicit transposes instead of transpose flags, against finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, transposedProductsAreFast } from './backend';
import { Transformer } from './model';
import { gradCheck, scaleParams, tinyConfig } from './test-helpers';

beforeAll(async () => {
  await initBackend('wasm', () => {}, { nativeKernels: false });
});

describe('stock wasm kernels', () => {
  it('use explicit transposes and still give correct gradients', () => {
    expect(transposedProductsAreFast()).toBe(false);
    const model = Transformer.create(tinyConfig({ tiedEmbeddings: false }), 5);
    scaleParams(model, 20);
    const n = gradCheck(model, ['wte.weight', 'h.0.attn.c_attn.weight', 'h.0.attn.c_attn.bias', 'h.1.mlp.c_fc.weight', 'lm_head.weight'], 2, 6);
    expect(n).toBe(15);
    model.dispose();
  });
});
