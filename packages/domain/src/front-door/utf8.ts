// UTF-8 that is checked, never silently repaired: a request body or dataset line with invalid
// bytes is refused, and the refusal names where they were.

const strict = new TextDecoder('utf-8', { fatal: true });

/**
 * Stands for each invalid byte sequence in `decodeMarking`'s output: a lone surrogate, which no
 * valid UTF-8 text can hold (and which request checks refuse anyway).
 */
export const INVALID_UTF8_MARK = '\udbff';

/** The bytes as text, or null when they are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return strict.decode(bytes);
  } catch {
    return null;
  }
}

/** The bytes as text with every invalid sequence replaced by INVALID_UTF8_MARK (one per bad byte). */
export function decodeMarking(bytes: Uint8Array): string {
  let out = '';
  let start = 0; // first byte of the valid run being collected
  let i = 0;
  const flush = (end: number) => {
    if (end > start) out += strict.decode(bytes.subarray(start, end));
  };
  while (i < bytes.length) {
    const n = validSequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    flush(i);
    out += INVALID_UTF8_MARK;
    i++;
    start = i;
  }
  flush(i);
  return out;
}

/** The length of the well-formed UTF-8 sequence at `i` (RFC 3629's table), or 0. */
function validSequenceLength(b: Uint8Array, i: number): number {
  const c = b[i] as number;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const x = b[i + k];
    return x !== undefined && x >= lo && x <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
