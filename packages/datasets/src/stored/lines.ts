// The lines of a stored object, read as a stream (one line in memory at a time), for everything
// read back line by line: statistics, previews, estimates and preparation.

import type { Storage } from '@crucible/storage';
import { LineSplitter } from '../lines';

export interface StoredLine {
  /** 1-based line number. */
  number: number;
  text: string;
  /** The file's last line, with no newline after it. */
  unterminated: boolean;
}

export async function* storedLines(storage: Storage, key: string): AsyncGenerator<StoredLine> {
  const splitter = new LineSplitter(Number.MAX_SAFE_INTEGER);
  const dec = new TextDecoder();
  const body = await storage.getStream(key);
  try {
    for await (const chunk of body) {
      for (const l of splitter.push(chunk as Uint8Array)) yield { number: l.number, text: dec.decode(l.bytes), unterminated: false };
    }
    for (const l of splitter.end()) yield { number: l.number, text: dec.decode(l.bytes), unterminated: true };
  } finally {
    body.destroy();
  }
}
