import { describe, expect, it } from 'vitest';
import { checkFilename, contentDisposition } from './filenames';

/** RFC 5987 ext-value decoding, written from the RFC: charset'lang'pct-encoded UTF-8. */
function decodeExtValue(header: string): string | null {
  const m = /filename\*=([^']*)'[^']*'([^;\s]+)/i.exec(header);
  if (!m) return null;
  expect((m[1] as string).toUpperCase()).toBe('UTF-8');
  return Buffer.from(
    (m[2] as string).replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

describe('contentDisposition', () => {
  it('matches RFC 6266’s own example for a non-ASCII name (section 5: "€ rates")', () => {
    const h = contentDisposition('€ rates');
    expect(h.toLowerCase()).toContain("filename*=utf-8''%e2%82%ac%20rates");
    expect(decodeExtValue(h)).toBe('€ rates');
  });

  it.each(['report.txt', '日本.txt', 'a"b\\c.txt', 'semi;colon=x.txt', '100%.txt', 'tab\tname', 'emoji 🎉.jsonl', "it's (1).txt"])(
    '%j: printable ASCII only, and the name comes back from filename* (or the plain filename)',
    (name) => {
      const h = contentDisposition(name);
      expect(/^[\x20-\x7e]+$/.test(h)).toBe(true);
      const plain = /filename="([^"]*)"/.exec(h)?.[1];
      expect(plain).toBeDefined();
      expect(plain).not.toMatch(/["\\]/);
      expect(decodeExtValue(h) ?? plain).toBe(name);
    },
  );

  it('keeps a plain ASCII name simple', () => {
    expect(contentDisposition('data.jsonl')).toBe('attachment; filename="data.jsonl"');
  });
});

describe('checkFilename', () => {
  it.each([
    ['data.jsonl', 'data.jsonl'],
    ['C:\\Users\\me\\data.txt', 'data.txt'],
    ['/tmp/x/y.txt', 'y.txt'],
    ['日本.txt', '日本.txt'],
  ])('%j is stored as %j', (raw, stored) => {
    expect(checkFilename(raw)).toEqual({ ok: true, name: stored });
  });

  it.each([
    ['a\u0000b', /NUL/],
    ['a\u0007b', /control character \(U\+0007\)/],
    ['x\ud800', /surrogate/],
    ['x'.repeat(256), /longer than 255/],
    ['dir/', /empty/],
    ['..', /empty/],
  ])('%j is refused', (raw, why) => {
    const r = checkFilename(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(why);
  });

  it('counts characters, not UTF-16 units: 255 emoji fit', () => {
    expect(checkFilename('🎉'.repeat(255)).ok).toBe(true);
  });
});
