// Files an attacker (or a broken exporter) sends: every malformed safetensors header and model
// config is refused with a SafetensorsError or ModelFormatError naming the problem, before
// anything is allocated in proportion to what the file claims.
import { describe, expect, it } from 'vitest';
import { checkGpt2Header, configFromGpt2, expectedGpt2Shapes, ModelFormatError } from './hf-gpt2';
import { readModelConfig } from './model-folder';
import { decodeSafetensors, encodeSafetensors, parseSafetensorsHeader, SafetensorsError, safetensorsHeaderLength } from './safetensors';

/** A file with this header (as written) and `data` bytes after it. */
function file(header: unknown, data = 0, rawHeader?: string): Uint8Array {
  const json = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function withLength(n: bigint, total = 64): Uint8Array {
  const out = new Uint8Array(total);
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
}

const refused = (bytes: Uint8Array, message: RegExp) => {
  expect(() => decodeSafetensors(bytes)).toThrow(SafetensorsError);
  expect(() => decodeSafetensors(bytes)).toThrow(message);
};

describe('safetensors headers', () => {
  it.each([
    [0n, /cannot hold/],
    [200_000_000n, /above the 100000000/],
    [2n ** 63n, /above/],
    [2n ** 64n - 1n, /above/],
    [1000n, /runs past the end/],
  ])('refuses a header length of %s', (n, message) => {
    refused(withLength(n), message);
    expect(() => safetensorsHeaderLength(withLength(n).subarray(0, 8), 64)).toThrow(SafetensorsError);
  });

  it('refuses a file shorter than 8 bytes', () => refused(Uint8Array.from([1, 2, 3, 4, 5]), /5 bytes, shorter/));

  it.each([
    ['a null header', null, /not a JSON object/],
    ['an array header', [], /not a JSON object/],
    ['an entry without data_offsets', { w: { dtype: 'F32', shape: [1] } }, /data_offsets/],
    ['a shape given as a string', { w: { dtype: 'F32', shape: '1', data_offsets: [0, 4] } }, /shape/],
    ['an unknown dtype', { w: { dtype: 'F31', shape: [1], data_offsets: [0, 4] } }, /unknown dtype/],
    ['negative offsets', { w: { dtype: 'F32', shape: [1], data_offsets: [-4, 0] } }, /data_offsets/],
    ['begin after end', { w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, /end before they begin/],
    ['F16 declared over F32-sized data', { w: { dtype: 'F16', shape: [2], data_offsets: [0, 8] } }, /span 8 bytes/],
    [
      'every tensor at [0, 0]',
      { a: { dtype: 'F32', shape: [4], data_offsets: [0, 0] }, b: { dtype: 'F32', shape: [4], data_offsets: [0, 0] } },
      /span 0 bytes/,
    ],
    ['overlapping offsets', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, /overlaps/],
    ['a gap', { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, /gap/],
    ['10^12 parameters over 4 bytes', { w: { dtype: 'F32', shape: [1_000_000, 1_000_000], data_offsets: [0, 4] } }, /span 4 bytes/],
    ['metadata that is not strings', { __metadata__: { a: 1 } }, /__metadata__/],
  ])('refuses %s', (_what, header, message) => refused(file(header, 16), message));

  it('refuses tensors that do not fill the file, or that run past it', () => {
    refused(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 16), /take 8 bytes but the file holds 16/);
    refused(file({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, 16), /take 32 bytes but the file holds 16/);
  });

  it('refuses a header that is not UTF-8 JSON', () => refused(file(null, 0, '{"a":'), /not valid UTF-8 JSON/));

  it('accepts what encodeSafetensors writes, with zero-sized tensors anywhere', () => {
    const bytes = encodeSafetensors(
      new Map([
        ['a', { dtype: 'F32' as const, shape: [2], data: Float32Array.from([1, 2]) }],
        ['b', { dtype: 'F32' as const, shape: [0, 3], data: new Float32Array(0) }],
        ['c', { dtype: 'I32' as const, shape: [1], data: Int32Array.from([5]) }],
      ]),
    );
    expect([...decodeSafetensors(bytes).tensors.keys()]).toEqual(['a', 'b', 'c']);
    const n = safetensorsHeaderLength(bytes.subarray(0, 8), bytes.length);
    expect(parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n).entries.size).toBe(3);
  });
});

const gpt2 = (over: Record<string, unknown> = {}) => ({ model_type: 'gpt2', vocab_size: 50, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2, ...over });

describe('model configs against their weights', () => {
  it('refuses n_layer 10,000,000 from two numbers, at once and without building anything', () => {
    const c = configFromGpt2(gpt2({ n_layer: 10_000_000 }));
    const entries = new Map([['wte.weight', { dtype: 'F32', shape: [50, 8] }]]);
    const t0 = performance.now();
    expect(() => checkGpt2Header(c, entries)).toThrow(/n_layer 10000000 implies 120000004 tensors; model.safetensors has 1/);
    expect(performance.now() - t0).toBeLessThan(50);
  });

  it('refuses a config whose tensors the file does not have, naming the first', () => {
    const c = configFromGpt2(gpt2({ vocab_size: 10 ** 9 }));
    const entries = new Map([...expectedGpt2Shapes(configFromGpt2(gpt2())).entries()].map(([n, shape]) => [n, { dtype: 'F32', shape }]));
    expect(() => checkGpt2Header(c, entries)).toThrow(/wte.weight has shape \[50,8\], config.json implies \[1000000000,8\]/);
  });

  it('refuses integers past 2^53 and a crucible_bert config without its model', () => {
    expect(() => configFromGpt2(gpt2({ n_layer: 1e300 }))).toThrow(ModelFormatError);
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    expect(() => readModelConfig(enc({ model_type: 'crucible_bert' }))).toThrow(/needs crucible.model/);
    expect(() => readModelConfig(enc({ model_type: 'crucible_bert', crucible: { model: { arch: 'bert', nLayer: -1 } } }))).toThrow(ModelFormatError);
  });
});
