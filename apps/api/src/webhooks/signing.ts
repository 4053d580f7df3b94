// Standard Webhooks signatures (the convention OpenAI's webhooks use), and the signed POST itself: headers webhook-id,
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

/** What one signed POST of an event got: the receiver's status, and an error unless it was a 2xx. */
export interface PostOutcome {
  statusCode: number | null;
  error: string | null;
}

/** POSTs `body` (an event whose id is `eventId`) to `url`, signed with `secret`; never throws. */
export async function postSigned(url: string, secret: string, eventId: string, body: string, timeoutMs: number): Promise<PostOutcome> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Crucible-Webhooks/1', ...signatureHeaders(secret, eventId, body) },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel().catch(() => {});
    return { statusCode: res.status, error: res.status >= 200 && res.status < 300 ? null : `receiver answered ${res.status}` };
  } catch (err) {
    return {
      statusCode: null,
      error: (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `could not connect: ${(err as Error).message}`,
    };
  }
}
