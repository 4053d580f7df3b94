// GPT-2's byte-level alphabet: every byte maps to one printable Unicode character, so that
// BPE can work on strings while still covering arbitrary bytes (and so every Unicode string).

/** The 256 characters that stand for bytes 0..255, in GPT-2's order. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b); // '!'..'~'
  for (let b = 161; b <= 172; b++) printable.push(b); // '¡'..'¬'
  for (let b = 174; b <= 255; b++) printable.push(b); // '®'..'ÿ'
  const table: string[] = new Array(256);
  const kept = new Set(printable);
  let shift = 0;
  for (let b = 0; b < 256; b++) {
    // Printable bytes stand for themselves; the rest move to U+0100 and up (space -> 'Ġ').
    table[b] = kept.has(b) ? String.fromCharCode(b) : String.fromCharCode(256 + shift++);
  }
  return table;
})();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const encoder = new TextEncoder();

/** UTF-8 bytes of `text`, each written as its byte-level character. */
export function toByteChars(text: string): string {
  let out = '';
  for (const b of encoder.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

/** Inverse of toByteChars on the byte level (bytes, not yet UTF-8 decoded). */
export function fromByteChars(chars: string, into: number[]): void {
  for (const c of chars) {
    const b = CHAR_TO_BYTE.get(c);
    if (b === undefined) throw new Error(`not a byte-level character: ${JSON.stringify(c)}`);
    into.push(b);
  }
}

/**
 * GPT-2's pre-tokenizer: contractions, letters with an optional leading space, numbers,
 * punctuation runs, and whitespace (trailing whitespace stays apart from the next word).
 */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export function preTokenize(text: string): string[] {
  return text.match(GPT2_SPLIT) ?? [];
}
