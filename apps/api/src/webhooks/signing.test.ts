import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { newSigningSecret, signatureHeaders } from './signing';

// The official openai client's verifier (Standard Webhooks) is the other side.
const client = new OpenAI({ apiKey: 'unused' });

describe('webhook signatures', () => {
  it('are accepted by the openai client’s verifier, and refused with another secret or body', async () => {
    const secret = newSigningSecret();
    const body = JSON.stringify({ id: 'evt-1', object: 'event', type: 'fine_tuning.job.succeeded', created_at: 1, data: { id: 'ftjob-1' } });
    const headers = signatureHeaders(secret, 'evt-1', body);
    await expect(client.webhooks.unwrap(body, headers, secret)).resolves.toMatchObject({ type: 'fine_tuning.job.succeeded' });
    await expect(client.webhooks.unwrap(`${body} `, headers, secret)).rejects.toThrow();
    await expect(client.webhooks.unwrap(body, headers, newSigningSecret())).rejects.toThrow();
  });

  it('carry the time they were made: an old signature is refused', async () => {
    const secret = newSigningSecret();
    const headers = signatureHeaders(secret, 'evt-2', '{}', Date.now() - 3_600_000);
    await expect(client.webhooks.unwrap('{}', headers, secret)).rejects.toThrow(/too old/);
  });
});
