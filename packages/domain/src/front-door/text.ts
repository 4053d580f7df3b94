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
export function findUnsafeString(value: unknown): { path: string; problem: string } | null {
  return findString(value, stringProblem);
}

/**
 * The first string (value or object key) of a parsed JSON value for which `test` finds a problem,
 * with its dotted path. Iterative: a deeply nested value cannot overflow the stack.
 */
export function findString(value: unknown, test: (s: string) => string | null): { path: string; problem: string } | null {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop() as [unknown, string];
    if (typeof v === 'string') {
      const problem = test(v);
      if (problem) return { path, problem };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], path ? `${path}.${i}` : String(i)]);
    } else if (v && typeof v === 'object') {
      const entries = Object.entries(v);
      for (const [k] of entries) {
        const keyProblem = test(k);
        if (keyProblem) return { path: path || k, problem: `has a key that ${keyProblem}` };
      }
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, x] = entries[i] as [string, unknown];
        stack.push([x, path ? `${path}.${k}` : k]);
      }
    }
  }
  return null;
}
