// The webhook-endpoint operations behind /v1/webhook_endpoints: endpoints belong to the key's
// project; a URL is checked against the address policy when it is set; test sends one signed
// sample at once.
import type { WebhookDeliveryRecord, WebhookEndpointRecord } from '@crucible/db';
import {
  type CreateWebhookRequest,
  CrucibleError,
  ID_PREFIX,
  newId,
  type TestWebhookRequest,
  type UpdateWebhookRequest,
  type WebhookDeliveryObject,
  type WebhookEndpointObject,
  type WebhookTestResult,
  webhookEvent,
} from '@crucible/domain';
import type { Static } from '@sinclair/typebox';
import type { Actor } from '../auth';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { page, unix } from '../pagination';
import { type AddressPolicy, allowedAddresses, WebhookAddressError } from './address-policy';
import { newSigningSecret, postSigned, secretHint } from './signing';

/** What the operations need: the deps, the webhook settings and the address policy made from them. */
export interface WebhookCtx {
  deps: Deps;
  cfg: ApiConfig['webhooks'];
  policy: AddressPolicy;
}

function endpointObject(e: WebhookEndpointRecord, withSecret = false): Static<typeof WebhookEndpointObject> {
  return {
    id: e.id,
    object: 'webhook_endpoint',
    name: e.name,
    url: e.url,
    event_types: e.eventTypes,
    created_at: unix(e.createdAt) as number,
    updated_at: unix(e.updatedAt) as number,
    signing_secret_hint: secretHint(e.secret),
    ...(withSecret ? { signing_secret: e.secret } : {}),
  };
}

function deliveryObject(d: WebhookDeliveryRecord): Static<typeof WebhookDeliveryObject> {
  return {
    id: d.id,
    object: 'webhook_endpoint.delivery',
    webhook_endpoint_id: d.endpointId,
    event_id: d.eventId,
    event_type: d.eventType,
    payload: d.event,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.status === 'pending' ? unix(d.nextAttemptAt) : null,
    last_status_code: d.lastStatusCode,
    last_error: d.lastError,
    created_at: unix(d.createdAt) as number,
    delivered_at: unix(d.deliveredAt),
  };
}

/** A webhook URL as stored: http(s), no credentials, and (unless private networks are allowed) not pointing into them. */
async function checkedUrl(raw: string, policy: AddressPolicy): Promise<string> {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new CrucibleError('invalid_request', `url is not a URL: ${JSON.stringify(raw.slice(0, 100))}`, 'url');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new CrucibleError('invalid_request', `url must use https or http, not ${u.protocol}`, 'url');
  if (u.username || u.password) throw new CrucibleError('invalid_request', 'url must not hold credentials', 'url');
  try {
    await allowedAddresses(u, policy);
  } catch (err) {
    if (!(err instanceof WebhookAddressError)) throw err;
    const hint = policy.allowPrivate ? '' : ' (an operator may allow intranet receivers with WEBHOOK_ALLOW_PRIVATE_NETWORKS)';
    throw new CrucibleError('invalid_request', `url: ${err.message}${hint}`, 'url');
  }
  return u.toString();
}

async function getEndpoint(deps: Deps, actor: Actor, id: string): Promise<WebhookEndpointRecord> {
  const e = await deps.store.webhooks.get(actor.projectId, id);
  if (!e) throw new CrucibleError('webhook_not_found', `no webhook endpoint ${id} in this project`, 'webhook_endpoint_id');
  return e;
}

export async function createEndpoint({ deps, policy }: WebhookCtx, actor: Actor, body: Static<typeof CreateWebhookRequest>) {
  const e = await deps.store.webhooks.create({
    id: newId(ID_PREFIX.webhook),
    projectId: actor.projectId,
    name: body.name,
    url: await checkedUrl(body.url, policy),
    secret: newSigningSecret(),
    eventTypes: body.event_types,
  });
  return endpointObject(e, true);
}

export async function listEndpoints(deps: Deps, actor: Actor, q: { after?: string; limit?: number }) {
  if (q.after) await getEndpoint(deps, actor, q.after);
  const r = await deps.store.webhooks.list(actor.projectId, { after: q.after, limit: q.limit ?? 20 });
  return page(
    r.items.map((e) => endpointObject(e)),
    r.hasMore,
  );
}

export async function retrieveEndpoint(deps: Deps, actor: Actor, id: string) {
  return endpointObject(await getEndpoint(deps, actor, id));
}

export async function updateEndpoint({ deps, policy }: WebhookCtx, actor: Actor, id: string, b: Static<typeof UpdateWebhookRequest>) {
  await getEndpoint(deps, actor, id);
  const e = await deps.store.webhooks.update(actor.projectId, id, {
    ...(b.name !== undefined ? { name: b.name } : {}),
    ...(b.url !== undefined ? { url: await checkedUrl(b.url, policy) } : {}),
    ...(b.event_types !== undefined ? { eventTypes: b.event_types } : {}),
  });
  return endpointObject(e ?? (await getEndpoint(deps, actor, id)));
}

export async function deleteEndpoint(deps: Deps, actor: Actor, id: string) {
  if (!(await deps.store.webhooks.delete(actor.projectId, id))) await getEndpoint(deps, actor, id);
  return { id, object: 'webhook_endpoint.deleted' as const, deleted: true };
}

/** A new signing secret, in force at once. */
export async function rotateSecret(deps: Deps, actor: Actor, id: string) {
  await getEndpoint(deps, actor, id);
  const e = await deps.store.webhooks.update(actor.projectId, id, { secret: newSigningSecret() });
  return endpointObject(e ?? (await getEndpoint(deps, actor, id)), true);
}

/** Sends one signed sample event now (not retried, not logged) and reports the receiver's status. */
export async function testEndpoint(
  { deps, cfg, policy }: WebhookCtx,
  actor: Actor,
  id: string,
  type: Static<typeof TestWebhookRequest>['event_type'],
): Promise<Static<typeof WebhookTestResult>> {
  const e = await getEndpoint(deps, actor, id);
  const eventId = newId(ID_PREFIX.webhookEvent);
  const body = JSON.stringify(webhookEvent(eventId, type, 'test', new Date()));
  const { statusCode, error } = await postSigned(e.url, e.secret, eventId, body, cfg.timeoutMs, policy);
  if (statusCode === null) throw new CrucibleError('webhook_unreachable', `the test event could not be delivered: ${error}`, 'url');
  // as OpenAI's: success says the test completed; status_code is what the receiver answered
  return {
    object: 'webhook_endpoint.test' as const,
    webhook_endpoint_id: e.id,
    event_type: type,
    status_code: statusCode,
    success: true as const,
    delivered: statusCode >= 200 && statusCode < 300,
  };
}

export async function listDeliveries(deps: Deps, actor: Actor, id: string, q: { after?: string; limit?: number }) {
  await getEndpoint(deps, actor, id);
  const r = await deps.store.webhooks.deliveries(actor.projectId, id, { after: q.after, limit: q.limit ?? 20 });
  return page(r.items.map(deliveryObject), r.hasMore);
}
