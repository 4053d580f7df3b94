// The SSE reader against hand-written streams, split at awkward places.
import { describe, expect, it } from 'vitest';
import { sseData } from './sse';

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
}

async function all(chunks: string[]): Promise<string[]> {
  const out: string[] = [];
  for await (const d of sseData(streamOf(chunks))) out.push(d);
  return out;
}

describe('sseData', () => {
  it('yields each event’s data, whatever the chunking', async () => {
    const text = 'data: {"a":1}\n\n: a comment\n\ndata: {"b":2}\n\ndata: [DONE]\n\n';
    expect(await all([text])).toEqual(['{"a":1}', '{"b":2}']);
    // every split point of the same text gives the same events
    for (let i = 1; i < text.length; i++) expect(await all([text.slice(0, i), text.slice(i)])).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('joins multi-line data, accepts CRLF and data without a space, and stops at [DONE]', async () => {
    expect(await all(['data: one\r\ndata:two\r\n\r\nevent: x\nid: 3\ndata: three\n\n', 'data: [DONE]\n\ndata: after\n\n'])).toEqual(['one\ntwo', 'three']);
  });

  it('keeps a UTF-8 character split across chunks whole', async () => {
    const bytes = new TextEncoder().encode('data: ROMÉO ✓\n\n');
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]));
        c.close();
      },
    });
    const out: string[] = [];
    for await (const d of sseData(stream)) out.push(d);
    expect(out).toEqual(['ROMÉO ✓']);
  });

  it('drops an event the stream ends in the middle of (the SSE spec), and yields none from an empty stream', async () => {
    expect(await all(['data: whole\n\ndata: tail\n'])).toEqual(['whole']);
    expect(await all(['data: tail'])).toEqual([]);
    expect(await all([])).toEqual([]);
  });
});
