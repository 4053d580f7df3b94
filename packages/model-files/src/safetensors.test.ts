import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from './safetensors';

describe('safetensors', () => {
  it('writes the documented layout: u64 header length, JSON header, aligned little-endian data', () => {
    const bytes = encodeSafetensors(
      new Map([
        ['b', { dtype: 'I32' as const, shape: [2], data: Int32Array.from([7, -1]) }],
        ['a', { dtype: 'F32' as const, shape: [1, 2], data: Float32Array.from([1.5, -2]) }],
      ]),
      { note: 'hi' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
    expect(header.__metadata__).toEqual({ note: 'hi' });
    expect(header.a).toEqual({ dtype: 'F32', shape: [1, 2], data_offsets: [0, 8] });
    expect(header.b).toEqual({ dtype: 'I32', shape: [2], data_offsets: [8, 16] });
    const view = new DataView(bytes.buffer, 8 + n);
    expect(view.getFloat32(0, true)).toBe(1.5);
    expect(view.getFloat32(4, true)).toBe(-2);
    expect(view.getInt32(8, true)).toBe(7);
    expect(view.getInt32(12, true)).toBe(-1);
    const back = decodeSafetensors(bytes);
    expect([...(back.tensors.get('a')?.data ?? [])]).toEqual([1.5, -2]);
    expect(back.metadata.note).toBe('hi');
  });

  it('decodes from a Node Buffer that is a view into a larger pool', () => {
    const bytes = encodeSafetensors(new Map([['w', { dtype: 'F32' as const, shape: [3], data: Float32Array.from([0.5, -1, 7]) }]]));
    const pool = Buffer.alloc(bytes.length + 13);
    pool.set(bytes, 13);
    const view = pool.subarray(13); // byteOffset 13, like Buffers from the shared pool or S3 bodies
    expect([...(decodeSafetensors(view).tensors.get('w')?.data ?? [])]).toEqual([0.5, -1, 7]);
  });

  it('rejects a truncated file', () => {
    const bytes = encodeSafetensors(new Map([['a', { dtype: 'F32' as const, shape: [4], data: new Float32Array(4) }]]));
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 4))).toThrow(/take 16 bytes but the file holds 12/);
  });
});
