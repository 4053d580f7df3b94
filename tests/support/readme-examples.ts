// The README's runnable examples: a fenced block right after `<!-- example: NAME -->`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function readmeExamples(file = join(import.meta.dirname, '../../README.md')): Map<string, string> {
  const text = readFileSync(file, 'utf8');
  const out = new Map<string, string>();
  for (const m of text.matchAll(/<!-- example: ([\w.-]+) -->\s*\n```[a-z]*\n([\s\S]*?)\n```/g)) out.set(m[1] as string, `${m[2]}\n`);
  return out;
}
