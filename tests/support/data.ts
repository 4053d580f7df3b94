// Test data: slices of Tiny Shakespeare (shipped in data/), and small tar.gz reading.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

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
