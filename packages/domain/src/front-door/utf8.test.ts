import { describe, expect, it } from 'vitest';
import { decodeMarking, decodeUtf8, INVALID_UTF8_MARK } from './utf8';

const bytes = (...xs: number[]) => Uint8Array.from(xs);

describe('UTF-8 decoding that refuses instead of repairing', () => {
  it('decodes valid text as TextDecoder does', () => {
    const s = 'plain, ünïcödé, 日本, 🎉';
    const b = new TextEncoder().encode(s);
    expect(decodeUtf8(b)).toBe(s);
    expect(decodeMarking(b)).toBe(s);
  });

  it.each([
    ['a lone continuation byte', [0x61, 0x80, 0x62]],
    ['an overlong encoding of "/"', [0x61, 0xc0, 0xaf, 0x62]],
    ['an encoded surrogate (CESU)', [0x61, 0xed, 0xa0, 0x80, 0x62]],
    ['a truncated 3-byte sequence', [0x61, 0xe6, 0x97, 0x62]],
    ['a code point past U+10FFFF', [0x61, 0xf4, 0x90, 0x80, 0x80, 0x62]],
    ['0xFF', [0x61, 0xff, 0x62]],
  ])('refuses %s, and marks where it was', (_what, xs) => {
    const b = bytes(...xs);
    expect(decodeUtf8(b)).toBeNull();
    // the same bad bytes TextDecoder would replace with U+FFFD, marked instead
    const replaced = new TextDecoder().decode(b);
    const marked = decodeMarking(b);
    expect(marked.startsWith('a') && marked.endsWith('b')).toBe(true);
    expect(marked.includes(INVALID_UTF8_MARK)).toBe(true);
    expect(replaced.includes('\ufffd')).toBe(true);
    expect(marked.replaceAll(INVALID_UTF8_MARK, '')).toBe(replaced.replaceAll('\ufffd', ''));
  });
});
