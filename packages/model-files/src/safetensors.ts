// The safetensors format (Hugging Face): 8-byte little-endian header length N, N bytes of JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}},
// then the raw little-endian tensor bytes. Checkpoints and exports use it as is. F16 and BF16
// tensors (common in published weights) are widened to F32 when read.

export type Dtype = 'F32' | 'I32';

/** A safetensors file that does not follow the format (its message names the tensor). */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
}

/** Bytes per element of the dtypes the format defines. */
const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** The largest header accepted (the format's own readers refuse 100 MB too). */
const MAX_HEADER_BYTES = 100_000_000;
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
  const n = safetensorsHeaderLength(bytes.subarray(0, 8), bytes.length);
  const { entries, metadata } = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n);
  const base = 8 + n;
  const tensors = new Map<string, NamedTensor>();
  for (const [name, { dtype, shape, data_offsets }] of entries) {
    const [begin, end] = data_offsets;
    // copy (Uint8Array's slice, even when `bytes` is a Buffer, whose slice is a view): aligned and independent
    const raw = Uint8Array.prototype.slice.call(bytes, base + begin, base + end);
    let data: Float32Array | Int32Array;
    if (dtype === 'F32') data = new Float32Array(raw.buffer, 0, raw.byteLength / 4);
    else if (dtype === 'I32') data = new Int32Array(raw.buffer, 0, raw.byteLength / 4);
    else if (dtype === 'F16' || dtype === 'BF16') data = widen(new Uint16Array(raw.buffer, 0, raw.byteLength / 2), dtype);
    else throw new SafetensorsError(`safetensors: tensor ${name} has dtype ${dtype}, which Crucible does not load (F32, F16, BF16, I32)`);
    tensors.set(name, { dtype: dtype === 'I32' ? 'I32' : 'F32', shape, data });
  }
  return { tensors, metadata };
}

/** The metadata of a whole file in memory, without copying its tensors. */
export function safetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  const n = safetensorsHeaderLength(bytes.subarray(0, 8), bytes.length);
  return parseSafetensorsHeader(bytes.subarray(8, 8 + n)).metadata;
}

/**
 * The header's length from the file's first 8 bytes, checked: at least an empty object, at most
 * 100 MB, and (given the file's size) inside the file.
 */
export function safetensorsHeaderLength(first8: Uint8Array, fileBytes?: number): number {
  if (first8.length < 8) throw new SafetensorsError(`safetensors: the file is ${first8.length} bytes, shorter than its 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n) throw new SafetensorsError(`safetensors: a header length of ${n} bytes cannot hold the JSON header`);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(`safetensors: a header length of ${n} bytes is above the ${MAX_HEADER_BYTES} accepted`);
  if (fileBytes !== undefined && 8 + Number(n) > fileBytes) {
    throw new SafetensorsError(`safetensors: the header length (${n} bytes) runs past the end of the ${fileBytes}-byte file`);
  }
  return Number(n);
}

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/**
 * The header's tensors and metadata, checked against the format: each entry has a known dtype, a
 * shape of non-negative integers and offsets whose span is exactly dtype size x element count;
 * the tensors tile the data section in order with no gap or overlap, from 0 to `dataBytes` (the
 * file's size after the header) when it is given. Nothing is allocated in proportion to what the
 * header claims.
 */
export function parseSafetensorsHeader(header: Uint8Array, dataBytes?: number): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(header));
  } catch (err) {
    throw new SafetensorsError(`safetensors: the header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SafetensorsError('safetensors: the header is not a JSON object');
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, e] of Object.entries(doc)) {
    if (name === '__metadata__') {
      if (typeof e !== 'object' || e === null || Array.isArray(e) || Object.values(e).some((v) => typeof v !== 'string')) {
        throw new SafetensorsError('safetensors: __metadata__ must be an object of strings');
      }
      metadata = e as Record<string, string>;
      continue;
    }
    entries.set(name, checkEntry(name, e));
  }
  const spans = [...entries].sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
  let at = 0;
  for (const [name, e] of spans) {
    const [begin, end] = e.data_offsets;
    if (begin !== at) {
      throw new SafetensorsError(
        begin < at
          ? `safetensors: tensor ${name} (bytes ${begin}-${end}) overlaps the tensor before it (which ends at ${at})`
          : `safetensors: tensor ${name} starts at byte ${begin}, leaving a gap after byte ${at}`,
      );
    }
    at = end;
  }
  if (dataBytes !== undefined && at !== dataBytes) {
    throw new SafetensorsError(`safetensors: the tensors take ${at} bytes but the file holds ${dataBytes} after its header`);
  }
  return { entries, metadata };
}

function checkEntry(name: string, e: unknown): SafetensorsEntry {
  const fail = (why: string): never => {
    throw new SafetensorsError(`safetensors: tensor ${name} ${why}`);
  };
  if (typeof e !== 'object' || e === null || Array.isArray(e)) fail('is not an object {dtype, shape, data_offsets}');
  const { dtype, shape, data_offsets } = e as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) fail(`has an unknown dtype ${JSON.stringify(dtype)}`);
  const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isCount)) fail('has a shape that is not an array of non-negative integers');
  if (!Array.isArray(data_offsets) || data_offsets.length !== 2 || !data_offsets.every(isCount))
    fail('has data_offsets that are not two non-negative integers');
  const [begin, end] = data_offsets as [number, number];
  if (begin > end) fail(`has data_offsets [${begin}, ${end}] that end before they begin`);
  const bytes = (shape as number[]).reduce((n, d) => n * BigInt(d), BigInt(DTYPE_BYTES[dtype as string] as number));
  if (bytes !== BigInt(end - begin)) fail(`is ${dtype} of shape [${shape}] (${bytes} bytes) but its data_offsets span ${end - begin} bytes`);
  return { dtype: dtype as string, shape: shape as number[], data_offsets: [begin, end] };
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
