// The safetensors format (Hugging Face): 8-byte little-endian header length N, N bytes of JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}},
// then the raw little-endian tensor bytes. Checkpoints and exports use it as is.

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
    else throw new Error(`safetensors: tensor ${name} has unsupported dtype ${dtype}`);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`safetensors: tensor ${name} size does not match its shape`);
    tensors.set(name, { dtype: dtype as Dtype, shape, data });
  }
  return { tensors, metadata };
}
