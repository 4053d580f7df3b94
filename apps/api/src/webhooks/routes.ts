// /v1/webhook_endpoints, shaped like OpenAI's webhook endpoints (the official client's
// `client.webhooks` works on it): create, list, retrieve, update, delete, rotate_secret, test,
// and (Crucible's own) the delivery log of an endpoint.
import type { WebhookDeliveryRecord, WebhookEndpointRecord } from '@crucible/db';
import {
  CreateWebhookRequest,
  CrucibleError,
  ID_PREFIX,
  IdParams,
  ListOf,
  ListQuery,
  newId,
  TestWebhookRequest,
  UpdateWebhookRequest,
  WebhookDeliveryObject,
  WebhookEndpointObject,
  WebhookTestResult,
} from '@crucible/domain';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { Actor } from '../auth';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { page, unix } from '../pagination';
import { type AddressPolicy, addressPolicy, allowedAddresses, WebhookAddressError } from './address-policy';
import { newSigningSecret, postSigned, secretHint } from './signing';

const tags = ['webhooks'];
type IdReq = { params: { id: string } };

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
    payload: d.payload,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.status === 'pending' ? unix(d.nextAttemptAt) : null,
    last_status_code: d.lastStatusCode,
    last_error: d.lastError,
    created_at: unix(d.createdAt) as number,
    delivered_at: unix(d.deliveredAt),
  };
}

/** http(s) only; the URL is where signed events go. */
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

export const webhookRoutes =
  (deps: Deps, cfg: ApiConfig): FastifyPluginAsync =>
  async (app) => {
    const policy = addressPolicy(cfg.webhooks);
    const admin = { scope: 'admin' as const };
    app.post(
      '/webhook_endpoints',
      {
        config: admin,
        schema: {
          operationId: 'createWebhookEndpoint',
          tags,
          body: CreateWebhookRequest,
          response: { 200: WebhookEndpointObject },
          description: 'Signed POSTs (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature) when the subscribed events happen.',
        },
      },
      async (req) => {
        const body = req.body as Static<typeof CreateWebhookRequest>;
        const e = await deps.store.webhooks.create({
          id: newId(ID_PREFIX.webhook),
          projectId: req.actor.projectId,
          name: body.name,
          url: await checkedUrl(body.url, policy),
          secret: newSigningSecret(),
          eventTypes: body.event_types,
        });
        return endpointObject(e, true);
      },
    );
    app.get(
      '/webhook_endpoints',
      { schema: { operationId: 'listWebhookEndpoints', tags, querystring: ListQuery, response: { 200: ListOf(WebhookEndpointObject) } } },
      async (req) => {
        const q = req.query as { after?: string; limit?: number };
        if (q.after) await getEndpoint(deps, req.actor, q.after);
        const r = await deps.store.webhooks.list(req.actor.projectId, { after: q.after, limit: q.limit ?? 20 });
        return page(
          r.items.map((e) => endpointObject(e)),
          r.hasMore,
        );
      },
    );
    app.get(
      '/webhook_endpoints/:id',
      { schema: { operationId: 'retrieveWebhookEndpoint', tags, params: IdParams, response: { 200: WebhookEndpointObject } } },
      async (req) => endpointObject(await getEndpoint(deps, req.actor, (req as IdReq).params.id)),
    );
    app.post(
      '/webhook_endpoints/:id',
      {
        config: admin,
        schema: { operationId: 'updateWebhookEndpoint', tags, params: IdParams, body: UpdateWebhookRequest, response: { 200: WebhookEndpointObject } },
      },
      async (req) => {
        const id = (req as IdReq).params.id;
        await getEndpoint(deps, req.actor, id);
        const b = req.body as Static<typeof UpdateWebhookRequest>;
        const e = await deps.store.webhooks.update(req.actor.projectId, id, {
          ...(b.name !== undefined ? { name: b.name } : {}),
          ...(b.url !== undefined ? { url: await checkedUrl(b.url, policy) } : {}),
          ...(b.event_types !== undefined ? { eventTypes: b.event_types } : {}),
        });
        return endpointObject(e ?? (await getEndpoint(deps, req.actor, id)));
      },
    );
    app.delete(
      '/webhook_endpoints/:id',
      {
        config: admin,
        schema: {
          operationId: 'deleteWebhookEndpoint',
          tags,
          params: IdParams,
          response: { 200: Type.Object({ id: Type.String(), object: Type.Literal('webhook_endpoint.deleted'), deleted: Type.Boolean() }) },
        },
      },
      async (req) => {
        const id = (req as IdReq).params.id;
        if (!(await deps.store.webhooks.delete(req.actor.projectId, id))) await getEndpoint(deps, req.actor, id);
        return { id, object: 'webhook_endpoint.deleted' as const, deleted: true };
      },
    );
    app.post(
      '/webhook_endpoints/:id/rotate_secret',
      {
        config: admin,
        schema: {
          operationId: 'rotateWebhookSecret',
          tags,
          params: IdParams,
          body: Type.Optional(Type.Object({ keep_old_secret_active_for_24_hours: Type.Optional(Type.Literal(false)) }, { additionalProperties: false })),
          response: { 200: WebhookEndpointObject },
          description: 'A new signing secret, in force at once (the old one is not kept).',
        },
      },
      async (req) => {
        const id = (req as IdReq).params.id;
        await getEndpoint(deps, req.actor, id);
        const e = await deps.store.webhooks.update(req.actor.projectId, id, { secret: newSigningSecret() });
        return endpointObject(e ?? (await getEndpoint(deps, req.actor, id)), true);
      },
    );
    app.post(
      '/webhook_endpoints/:id/test',
      {
        config: admin,
        schema: {
          operationId: 'testWebhookEndpoint',
          tags,
          params: IdParams,
          body: TestWebhookRequest,
          response: { 200: WebhookTestResult },
          description: 'Sends one signed sample event now (not retried, not logged) and reports the receiver’s status.',
        },
      },
      async (req) => {
        const e = await getEndpoint(deps, req.actor, (req as IdReq).params.id);
        const type = (req.body as Static<typeof TestWebhookRequest>).event_type;
        const eventId = newId(ID_PREFIX.webhookEvent);
        const body = JSON.stringify({ id: eventId, object: 'event', type, created_at: Math.floor(Date.now() / 1000), data: { id: 'test' } });
        const { statusCode, error } = await postSigned(e.url, e.secret, eventId, body, cfg.webhooks.timeoutMs, policy);
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
      },
    );
    app.get(
      '/webhook_endpoints/:id/deliveries',
      {
        schema: {
          operationId: 'listWebhookDeliveries',
          tags,
          params: IdParams,
          querystring: ListQuery,
          response: { 200: ListOf(WebhookDeliveryObject) },
          description: 'The delivery log, newest first: each event, its attempts, the last status code or error.',
        },
      },
      async (req) => {
        const id = (req as IdReq).params.id;
        await getEndpoint(deps, req.actor, id);
        const q = req.query as { after?: string; limit?: number };
        const r = await deps.store.webhooks.deliveries(req.actor.projectId, id, { after: q.after, limit: q.limit ?? 20 });
        return page(r.items.map(deliveryObject), r.hasMore);
      },
    );
  };
