// How deep JSON text nests, found by one linear scan of the text before it is parsed: the parsers
// handle any depth, but the code that walks a parsed value (JSON.stringify, recursive checks)
// would overflow the stack on a value nested thousands deep, which one request or one dataset
// line could otherwise send.

/** The deepest nesting accepted in a request body or a dataset line (OpenAI's own shapes need 5). */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text nests arrays and objects deeper than `max`. Brackets inside strings do not
 * count; the text need not be valid JSON (the parser reports that).
 */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
