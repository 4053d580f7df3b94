// The safetensors format (Hugging Face): 8-byte little-endian header length N, N bytes of JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}},
// then the raw little-endian tensor bytes. Checkpoints and exports use it as is. F16 and BF16
// tensors (common in published weights) are widened to F32 when read.

export type Dtype = 'F32' | 'I32';
export interface NamedTensor {
  dtype: Dtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

export function encodeSafetensors(tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const entries = [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, t] of entries) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: shape [${t.shape}] holds ${n} values, data has ${t.data.length}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // align the data to 8 bytes
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error('safetensors: file shorter than its 8-byte header length');
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw new Error('safetensors: header length exceeds file size');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  const base = 8 + n;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [begin, end] = data_offsets;
    if (base + end > bytes.length || begin > end) throw new Error(`safetensors: tensor ${name} lies outside the file`);
    // copy (Uint8Array's slice, even when `bytes` is a Buffer, whose slice is a view): aligned and independent
    const raw = Uint8Array.prototype.slice.call(bytes, base + begin, base + end);
    let data: Float32Array | Int32Array;
    if (dtype === 'F32') data = new Float32Array(raw.buffer, 0, raw.byteLength / 4);
    else if (dtype === 'I32') data = new Int32Array(raw.buffer, 0, raw.byteLength / 4);
    else if (dtype === 'F16' || dtype === 'BF16') data = widen(new Uint16Array(raw.buffer, 0, raw.byteLength / 2), dtype);
    else throw new Error(`safetensors: tensor ${name} has unsupported dtype ${dtype}`);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`safetensors: tensor ${name} size does not match its shape`);
    tensors.set(name, { dtype: dtype === 'I32' ? 'I32' : 'F32', shape, data });
  }
  return { tensors, metadata };
}

/** The metadata of a whole file in memory, without copying its tensors. */
export function safetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  const n = safetensorsHeaderLength(bytes.subarray(0, 8));
  if (8 + n > bytes.length) throw new Error('safetensors: header length exceeds file size');
  return parseSafetensorsHeader(bytes.subarray(8, 8 + n)).metadata;
}

/** Reads only the header (names, dtypes, shapes, metadata): for checking a file without loading it. */
export function safetensorsHeaderLength(first8: Uint8Array): number {
  if (first8.length < 8) throw new Error('safetensors: file shorter than its 8-byte header length');
  const n = Number(new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true));
  if (n > 100_000_000) throw new Error(`safetensors: header of ${n} bytes is implausibly large`);
  return n;
}

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export function parseSafetensorsHeader(header: Uint8Array): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  const doc = JSON.parse(new TextDecoder().decode(header)) as Record<string, unknown>;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, e] of Object.entries(doc)) {
    if (name === '__metadata__') metadata = e as Record<string, string>;
    else entries.set(name, e as SafetensorsEntry);
  }
  return { entries, metadata };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function widen(half: Uint16Array, dtype: 'F16' | 'BF16'): Float32Array {
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i++) {
    const h = half[i] as number;
    if (dtype === 'BF16') {
      u32[0] = h << 16;
      out[i] = f32[0] as number;
      continue;
    }
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * 2 ** -14 * (frac / 1024);
    else if (exp === 31) out[i] = frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else out[i] = sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return out;
}
