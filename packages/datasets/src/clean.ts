// Text cleaning rules, each a pure function that returns the new text (the same string when
// nothing changed, so a caller can count changes).

/** Unicode normalisation to NFC (composed characters: "e" + U+0301 becomes "é"). */
export const normalizeUnicode = (s: string): string => s.normalize('NFC');

// C0 and C1 controls, DEL, and invisible format characters that break tokenization (zero-width
// spaces and joiners, BOM, bidi overrides); tab, newline and carriage return are kept.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this rule's purpose
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u200B\u2028\u2029\u202A-\u202E\u2060\uFEFF]/g;

/** Removes control characters (keeps \t, \n, \r; newlines are whitespace's business). */
export const removeControlCharacters = (s: string): string => s.replace(CONTROL, '');

/**
 * Whitespace normalisation: \r\n and \r become \n, Unicode spaces (NBSP, thin spaces, ...) and
 * runs of spaces and tabs become one space, spaces at line ends go, and more than one blank line
 * in a row becomes one; with `trimEnds` (plain-text paragraphs), leading and trailing whitespace
 * goes too (a JSONL field keeps one, since a completion's leading space is part of its tokens).
 */
export function normalizeWhitespace(s: string, trimEnds = true): string {
  const out = s
    .replace(/\r\n?/g, '\n')
    .replace(/[\t \u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n');
  return trimEnds ? out.trim() : out;
}
