// Server-Sent Events over fetch (EventSource cannot send an Authorization header): the `data:`
// payload of each event, in order, until the stream ends or sends `[DONE]`.

export async function* sseData(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const onAbort = () => {
    reader.cancel().catch(() => {});
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl = buffer.search(/\r?\n/);
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(buffer[nl] === '\r' ? nl + 2 : nl + 1);
        if (line === '') {
          if (data.length > 0) {
            const payload = data.join('\n');
            data = [];
            if (payload === '[DONE]') return;
            yield payload;
          }
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line[5] === ' ' ? 6 : 5));
        } // comments (`: ...`), event:, id: and retry: lines carry nothing the API uses
        nl = buffer.search(/\r?\n/);
      }
    }
    // an event the stream ended in the middle of (no blank line after it) is dropped, as the SSE spec says
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // a consumer that stops early closes the connection too
    await reader.cancel().catch(() => {});
  }
}
