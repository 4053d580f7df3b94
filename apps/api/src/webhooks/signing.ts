// Standard Webhooks signatures (the convention OpenAI's webhooks use): headers webhook-id,
// webhook-timestamp (Unix seconds) and webhook-signature `v1,<base64 HMAC-SHA256>` over
// `<id>.<timestamp>.<body>`, keyed with the base64 bytes after `whsec_` in the endpoint's secret.
import { createHmac, randomBytes } from 'node:crypto';

export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** `whsec_…` shown as its first characters only (the secret itself is shown once). */
export function secretHint(secret: string): string {
  return `${secret.slice(0, 10)}…`;
}

export function signatureHeaders(secret: string, webhookId: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(now / 1000));
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${webhookId}.${timestamp}.${body}`).digest('base64');
  return { 'webhook-id': webhookId, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}
