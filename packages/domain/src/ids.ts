// Resource ids: a prefix and 24 random base-62 characters, as OpenAI's (file-…, ftjob-…).
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export const ID_PREFIX = {
  project: 'proj',
  apiKey: 'key',
  file: 'file',
  job: 'ftjob',
  event: 'ftevent',
  checkpoint: 'ftckpt',
  completion: 'cmpl',
  chatCompletion: 'chatcmpl',
} as const;

export function newId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let s = '';
  for (const b of bytes) s += ALPHABET[b % 62];
  return `${prefix}-${s}`;
}

/** A secret API key: `sk-crucible-` and 40 random characters. */
export function newApiKeySecret(): string {
  return newId('sk-crucible', 40);
}
