// What a string must not hold to be stored in PostgreSQL or sent in an HTTP header: NUL bytes
// (PostgreSQL text cannot hold U+0000) and lone UTF-16 surrogates (not encodable as UTF-8).

/** The first problem of a string, or null: `NUL byte` or `lone surrogate`, with its index. */
export function stringProblem(s: string): string | null {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) return `holds a NUL byte (U+0000) at index ${i}`;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return `holds a lone UTF-16 surrogate at index ${i}`;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return `holds a lone UTF-16 surrogate at index ${i}`;
  }
  return null;
}

/**
 * The first string (value or object key) in a parsed JSON value that PostgreSQL or HTTP cannot
 * hold, as { path, problem }; the path is dotted (`metadata.k`, `messages.0.content`).
 */
export function findUnsafeString(value: unknown, path = ''): { path: string; problem: string } | null {
  if (typeof value === 'string') {
    const problem = stringProblem(value);
    return problem ? { path, problem } : null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = findUnsafeString(value[i], path ? `${path}.${i}` : String(i));
      if (hit) return hit;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const at = path ? `${path}.${k}` : k;
      const keyProblem = stringProblem(k);
      if (keyProblem) return { path: path || k, problem: `has a key that ${keyProblem}` };
      const hit = findUnsafeString(v, at);
      if (hit) return hit;
    }
  }
  return null;
}
