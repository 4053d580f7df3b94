// Finds Tiny Shakespeare: the full file in ../shared when present, else the slice shipped in data/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const CORPUS_CANDIDATES = [process.env.CRUCIBLE_CORPUS, join(root, '../shared/data/tinyshakespeare.txt'), join(root, 'data/tinyshakespeare.txt')].filter(
  (p): p is string => Boolean(p),
);

export function corpusPath(): string {
  const p = CORPUS_CANDIDATES.find((c) => existsSync(c));
  if (!p) throw new Error(`Tiny Shakespeare not found; looked in ${CORPUS_CANDIDATES.join(', ')}`);
  return p;
}

export function loadCorpus(read: (p: string, enc: 'utf8') => string): string {
  return read(corpusPath(), 'utf8');
}
