// The tar reader against archives made by GNU tar (the other side's own code) and against broken
// and hostile ones: every defect is a TarFormatError before any oversized entry is read.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readTar, TarFormatError, tarStream } from './tar';

async function entries(bytes: Uint8Array, opts: Parameters<typeof readTar>[1] = {}): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const e of readTar(Readable.from([Buffer.from(bytes)]), opts)) {
    const chunks: Buffer[] = [];
    for await (const c of e.body) chunks.push(c as Buffer);
    out.push([e.name, Buffer.concat(chunks).toString()]);
  }
  return out;
}

async function ours(files: Array<[string, string]>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of tarStream(files.map(([name, text]) => ({ name, size: Buffer.byteLength(text), open: async () => [Buffer.from(text)] }))))
    chunks.push(c);
  return Buffer.concat(chunks);
}

/** Rewrites a header field and its checksum, as a hostile writer would. */
function patch(tar: Buffer, offset: number, bytes: number[] | string): Buffer {
  const t = Buffer.from(tar);
  (typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes)).copy(t, offset);
  t.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += t[i] as number;
  t.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return t;
}

const hasTar = (() => {
  try {
    execFileSync('tar', ['--version']);
    return true;
  } catch {
    return false;
  }
})();

describe('readTar', () => {
  it.skipIf(!hasTar)('reads what GNU tar writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tar-test-'));
    writeFileSync(join(dir, 'config.json'), '{"a":1}');
    writeFileSync(join(dir, 'big.txt'), 'x'.repeat(1500));
    const bytes = execFileSync('tar', ['-c', '-f', '-', '--format=ustar', '-C', dir, 'config.json', 'big.txt']);
    expect(await entries(bytes)).toEqual([
      ['config.json', '{"a":1}'],
      ['big.txt', 'x'.repeat(1500)],
    ]);
  });

  it('reads its own archives', async () => {
    expect(await entries(await ours([['a.json', 'hello']]))).toEqual([['a.json', 'hello']]);
  });

  it.each([
    ['cut inside a header', (t: Buffer) => t.subarray(0, 300), /ends inside the header/],
    ['cut inside a body', (t: Buffer) => t.subarray(0, 512 + 100), /ends inside entry a.json/],
    ['a garbage header', (t: Buffer) => Buffer.concat([Buffer.from('not a tar archive at all '.repeat(30)).subarray(0, 512), t.subarray(512)]), /checksum/],
    ['a base-256 size', (t: Buffer) => patch(t, 124, [0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]), /base-256/],
    ['a non-octal size', (t: Buffer) => patch(t, 124, '00000000099\0'), /not octal/],
  ])('refuses %s', async (_what, damage, message) => {
    const tar = damage(await ours([['a.json', 'x'.repeat(700)]]));
    await expect(entries(tar)).rejects.toThrow(TarFormatError);
    await expect(entries(tar)).rejects.toThrow(message);
  });

  it('refuses an entry above its limit from its header, before reading it', async () => {
    const tar = await ours([['weights.bin', 'x'.repeat(5000)]]);
    let read = 0;
    const opts = { maxEntryBytes: () => 4096, charge: (n: number) => void (read += n) };
    await expect(entries(tar, opts)).rejects.toThrow(/weights.bin is 5000 bytes, above the 4096/);
    expect(read).toBe(512); // the header only
  });

  it('charges every byte it reads, and stops when the charge throws', async () => {
    const tar = await ours([
      ['a', 'x'.repeat(1000)],
      ['b', 'y'.repeat(1000)],
    ]);
    let read = 0;
    await entries(tar, { charge: (n) => void (read += n) });
    expect(read).toBe(2 * (512 + 1024) + 512); // two headers, two padded bodies, the end marker's first block
    read = 0;
    await expect(
      entries(tar, {
        charge: (n) => {
          read += n;
          if (read > 2000) throw new TarFormatError('too much');
        },
      }),
    ).rejects.toThrow('too much');
  });
});
