// Standard Webhooks signatures (the convention OpenAI's webhooks use), and the signed POST itself: headers webhook-id,
// webhook-timestamp (Unix seconds) and webhook-signature `v1,<base64 HMAC-SHA256>` over
// `<id>.<timestamp>.<body>`, keyed with the base64 bytes after `whsec_` in the endpoint's secret.
import { createHmac, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type AddressPolicy, allowedAddresses, WebhookAddressError } from './address-policy';

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
  /** What the tenant is told of a failure: `status N`, `unreachable`, or `address not allowed`; null when delivered. */
  error: string | null;
}

/**
 * POSTs `body` (an event whose id is `eventId`) to `url`, signed with `secret`; never throws. The
 * URL's addresses are checked by the policy first and the connection goes to the address that was
 * checked. A failure is reported as no more than `status N`, `unreachable` or `address not allowed`:
 * a tenant learns nothing of the server's network from it.
 */
export async function postSigned(url: string, secret: string, eventId: string, body: string, timeoutMs: number, policy: AddressPolicy): Promise<PostOutcome> {
  let target: URL;
  let addrs: Array<{ address: string; family: number }>;
  try {
    target = new URL(url);
    addrs = await allowedAddresses(target, policy);
  } catch (err) {
    return { statusCode: null, error: err instanceof WebhookAddressError && !/does not resolve/.test(err.message) ? 'address not allowed' : 'unreachable' };
  }
  const pinned = addrs[0] as { address: string; family: number };
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'Crucible-Webhooks/1',
    ...signatureHeaders(secret, eventId, body),
  };
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: PostOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(
      target,
      {
        method: 'POST',
        headers,
        // the connection goes to the checked address, whatever the name resolves to now
        lookup: ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) =>
          opts?.all ? cb(null, [pinned]) : cb(null, pinned.address, pinned.family)) as never,
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        finish({ statusCode: code, error: code >= 200 && code < 300 ? null : `status ${code}` });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ statusCode: null, error: 'unreachable' });
    }, timeoutMs);
    req.on('error', () => finish({ statusCode: null, error: 'unreachable' }));
    req.end(body);
  });
}
