// Filenames: what is stored (checked, never silently rewritten, except that a client's directory
// part is dropped) and how they go back out in Content-Disposition (RFC 6266 with RFC 5987's
// filename* for anything beyond printable ASCII).
import { stringProblem } from './text';

export const MAX_FILENAME_CHARS = 255;

/** The name to store, or the reason it cannot be: control characters, too long, or empty. */
export function checkFilename(raw: string): { ok: true; name: string } | { ok: false; reason: string } {
  const name = raw.split(/[\\/]/).pop() ?? '';
  const problem = stringProblem(name);
  if (problem) return { ok: false, reason: `filename ${problem}` };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  const control = /[\u0000-\u001f\u007f-\u009f]/.exec(name);
  if (control) return { ok: false, reason: `filename holds a control character (U+${control[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()})` };
  if ([...name].length > MAX_FILENAME_CHARS) return { ok: false, reason: `filename is longer than ${MAX_FILENAME_CHARS} characters` };
  if (name.trim() === '' || name === '.' || name === '..') return { ok: false, reason: 'filename is empty' };
  return { ok: true, name };
}

/** RFC 5987 ext-value characters that need no percent-encoding (attr-char). */
const ATTR_CHAR = /[A-Za-z0-9!#$&+.^_`|~-]/;

/**
 * `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`: the quoted
 * fallback holds printable ASCII only (others become `_`, quotes and backslashes are dropped).
 */
export function contentDisposition(filename: string, type: 'attachment' | 'inline' = 'attachment'): string {
  const fallback = [...filename]
    .map((ch) => (/^[\x20-\x7e]$/.test(ch) ? ch : '_'))
    .join('')
    .replace(/["\\]/g, '');
  let encoded = '';
  for (const byte of Buffer.from(filename, 'utf8')) {
    const ch = String.fromCharCode(byte);
    encoded += byte < 0x80 && ATTR_CHAR.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  const plain = fallback === filename && !/[%]/.test(filename);
  return plain ? `${type}; filename="${fallback}"` : `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
