// Shared set-up for the trainer's unit tests: a backend, and tiny models and data.
import { initBackend } from './backend';
import { type ModelConfig, modelConfig } from './config';

export async function useBackend(): Promise<void> {
  await initBackend((process.env.TFJS_BACKEND as 'wasm' | 'cpu' | undefined) ?? 'auto');
}

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 8, blockSize: 6 }, 11, over);
}

/** Deterministic pseudo-random token ids in [0, vocab). */
export function randomTokens(n: number, vocab: number, seed = 1): Int32Array {
  let x = seed;
  return Int32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % vocab;
  });
}
