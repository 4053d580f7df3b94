// Test data: slices of Tiny Shakespeare (shipped in data/), small tar reading and writing, and a
// tiny model folder in Hugging Face layout.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { baseParamSpecs, CharTokenizer, writeModelFolder } from '@crucible/model-files';
import type { ModelConfig } from '@crucible/training-config';

export const SHAKESPEARE = readFileSync(join(import.meta.dirname, '../../data/tinyshakespeare.txt'), 'utf8');
export const shakespeare = (chars: number) => SHAKESPEARE.slice(0, chars);

/** Reads the regular files of a .tar.gz (independent of the writer under test). */
export function untarGz(gz: Uint8Array): Map<string, Buffer> {
  const tar = gunzipSync(gz);
  const files = new Map<string, Buffer>();
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = Number.parseInt(h.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim(), 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
    const stored = Number.parseInt(h.subarray(148, 156).toString('utf8').replace(/\0.*$/s, '').trim(), 8);
    if (sum !== stored) throw new Error(`tar checksum mismatch for ${name}`);
    files.set(name, tar.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/**
 * A ustar archive of these entries, written here from tar(5)'s field layout (independent of the
 * writer under test). `size` replaces an entry's size field as written (a hostile archive).
 */
export function ustar(entries: Array<[string, Buffer, { size?: string }?]>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, body, o] of entries) {
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write('0000644\0', 100);
    h.write(o?.size ?? `${body.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    h.write('00000000000\0', 136);
    h.fill(0x20, 148, 156);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const x of h) sum += x;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

/** The files of a tiny GPT-2 (1 layer, width 4, character tokenizer, zero weights), as Crucible writes a folder. */
export function tinyModelFolder(): Record<string, Buffer> {
  const tokenizer = CharTokenizer.train('abcdefgh', ['<|endoftext|>']);
  const config: ModelConfig = {
    arch: 'gpt',
    vocabSize: tokenizer.vocabSize,
    nLayer: 1,
    nHead: 1,
    dModel: 4,
    blockSize: 4,
    ffnMult: 4,
    dropout: 0,
    bias: true,
    tiedEmbeddings: true,
  };
  const weights = new Map(baseParamSpecs(config).map((s) => [s.name, { shape: s.shape, data: new Float32Array(s.shape.reduce((a, b) => a * b, 1)) }]));
  const files = writeModelFolder({ config, weights, tokenizer, baseModel: 'test' });
  return Object.fromEntries(Object.entries(files).map(([n, b]) => [n, Buffer.from(b)]));
}
