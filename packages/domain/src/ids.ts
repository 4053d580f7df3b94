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
  evaluation: 'eval',
  evaluationEvent: 'evalevent',
  webhook: 'whep',
  webhookDelivery: 'whdel',
  webhookEvent: 'evt',
} as const;

/** The part of an id after its prefix (`ftjob-abc` -> `abc`). */
export function idBody(id: string): string {
  const dash = id.indexOf('-');
  if (dash < 0) throw new RangeError(`not a prefixed id: ${id}`);
  return id.slice(dash + 1);
}

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
