// Uploading a dataset: multipart/form-data with the purpose and the file, from bytes, a string, a
// Blob or a stream, with progress. Browsers report progress through XMLHttpRequest (fetch has no
// upload progress there); elsewhere the multipart body is streamed and counted as it is sent.
import { CrucibleApiError, errorBodyOf } from './errors.js';

export type FilePurpose = 'fine-tune' | 'pretrain' | 'supervised' | 'evals';

export type UploadData = Blob | Uint8Array | string | ReadableStream<Uint8Array>;

export interface UploadInput {
  /** The file name the API stores (its extension tells .jsonl from plain text). */
  name: string;
  data: UploadData;
  /** Bytes in `data` when it is a stream, for progress totals. */
  size?: number;
}

export interface UploadProgress {
  /** Bytes of the file sent so far. */
  loaded: number;
  /** The file's size, or null when unknown (a stream without `size`). */
  total: number | null;
}

export interface UploadOptions {
  /** Default `fine-tune`. */
  purpose?: FilePurpose;
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface Transport {
  url: string;
  headers: Record<string, string>;
  fetch: typeof fetch;
}

/** The XMLHttpRequest members used here (declared so that this compiles without the DOM library). */
interface Xhr {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: unknown): void;
  abort(): void;
  readonly status: number;
  readonly responseText: string;
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}

function xhrConstructor(): (new () => Xhr) | undefined {
  return (globalThis as { XMLHttpRequest?: new () => Xhr }).XMLHttpRequest;
}

/** Data already in memory (a string, bytes or a Blob), as opposed to a stream. */
function inMemory(d: UploadData): d is Blob | Uint8Array | string {
  return typeof d === 'string' || d instanceof Uint8Array || (typeof Blob !== 'undefined' && d instanceof Blob);
}

function memoryBlob(d: Blob | Uint8Array | string): Blob {
  if (typeof d === 'string') return new Blob([d]);
  if (d instanceof Uint8Array) return new Blob([new Uint8Array(d)]);
  return d;
}

async function toBlob(data: UploadData): Promise<Blob> {
  return inMemory(data) ? memoryBlob(data) : await new Response(data).blob();
}

/** Sends the upload and returns the API's JSON answer; throws CrucibleApiError on a 4xx/5xx. */
export async function sendUpload(t: Transport, input: UploadInput, opts: UploadOptions): Promise<unknown> {
  const purpose = opts.purpose ?? 'fine-tune';
  const Xhr = xhrConstructor();
  const isStream = !inMemory(input.data);
  if (Xhr && (opts.onProgress || isStream)) return viaXhr(Xhr, t, purpose, input, await toBlob(input.data), opts);
  if (!opts.onProgress && !isStream) {
    const form = new FormData();
    form.set('purpose', purpose);
    form.set('file', await toBlob(input.data), input.name);
    return answer(await t.fetch(t.url, { method: 'POST', headers: t.headers, body: form, signal: opts.signal }));
  }
  return viaStream(t, purpose, input, opts);
}

async function answer(res: Response): Promise<unknown> {
  if (!res.ok) throw await CrucibleApiError.fromResponse(res);
  return res.json();
}

function viaXhr(Xhr: new () => Xhr, t: Transport, purpose: FilePurpose, input: UploadInput, blob: Blob, opts: UploadOptions): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const xhr = new Xhr();
    xhr.open('POST', t.url);
    for (const [k, v] of Object.entries(t.headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => opts.onProgress?.({ loaded: e.loaded, total: e.lengthComputable ? e.total : null });
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        opts.onProgress?.({ loaded: blob.size, total: blob.size });
        resolve(JSON.parse(xhr.responseText));
      } else reject(new CrucibleApiError(xhr.status, errorBodyOf(xhr.responseText, xhr.status)));
    };
    xhr.onerror = () => reject(new TypeError('upload failed: network error'));
    xhr.onabort = () => reject(opts.signal?.reason ?? new Error('upload aborted'));
    opts.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    const form = new FormData();
    form.set('purpose', purpose);
    form.set('file', blob, input.name);
    xhr.send(form);
  });
}

/** A quoted multipart parameter value, escaped as browsers do (RFC 7578 / WHATWG). */
function quoted(value: string): string {
  return value.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22');
}

/** The multipart body streamed: purpose part, file part header, the file's bytes counted as they are pulled, closing boundary. */
async function viaStream(t: Transport, purpose: FilePurpose, input: UploadInput, opts: UploadOptions): Promise<unknown> {
  const boundary = `----crucible-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const enc = new TextEncoder();
  const head = enc.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoted(input.name)}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = enc.encode(`\r\n--${boundary}--\r\n`);
  const blob = inMemory(input.data) ? memoryBlob(input.data) : null;
  const total = blob ? blob.size : (input.size ?? null);
  const source: ReadableStream<Uint8Array> = blob ? blob.stream() : (input.data as ReadableStream<Uint8Array>);
  const reader = source.getReader();
  let loaded = 0;
  let stage: 'head' | 'file' | 'tail' | 'done' = 'head';
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (stage === 'head') {
        stage = 'file';
        opts.onProgress?.({ loaded: 0, total });
        controller.enqueue(head);
        return;
      }
      if (stage === 'file') {
        const { value, done } = await reader.read();
        if (!done) {
          loaded += value.byteLength;
          controller.enqueue(value);
          opts.onProgress?.({ loaded, total });
          return;
        }
        stage = 'tail';
      }
      if (stage === 'tail') {
        stage = 'done';
        controller.enqueue(tail);
        controller.close();
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  const init = {
    method: 'POST',
    headers: { ...t.headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
    body,
    duplex: 'half',
    signal: opts.signal,
  };
  return answer(await t.fetch(t.url, init as RequestInit));
}
