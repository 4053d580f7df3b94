// /v1/webhook_endpoints, shaped like OpenAI's webhook endpoints (the official client's
// `client.webhooks` works on it): create, list, retrieve, update, delete, rotate_secret, test,
// and (Crucible's own) the delivery log of an endpoint. The operations are in service.ts; the
// events themselves are published as the OpenAPI document's webhooks (webhookDocs).
import {
  CreateWebhookRequest,
  IdParams,
  ListOf,
  ListQuery,
  TestWebhookRequest,
  UpdateWebhookRequest,
  WEBHOOK_EVENT_TYPES,
  WebhookDeliveryObject,
  WebhookEndpointObject,
  WebhookTestResult,
} from '@crucible/domain';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { addressPolicy } from './address-policy';
import {
  createEndpoint,
  deleteEndpoint,
  listDeliveries,
  listEndpoints,
  retrieveEndpoint,
  rotateSecret,
  testEndpoint,
  updateEndpoint,
  type WebhookCtx,
} from './service';

const tags = ['webhooks'];

/** The OpenAPI document's `webhooks`: one POST per event type, its body a WebhookEvent. */
export function webhookDocs() {
  const post = (type: string) => ({
    post: {
      operationId: `webhook.${type}`,
      tags,
      summary: `Sent to endpoints subscribed to ${type}, signed with Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature).`,
      requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/WebhookEvent' } } } },
      responses: { '2XX': { description: 'Delivered. Any other answer (or none within WEBHOOK_TIMEOUT_MS) is retried with backoff.' } },
    },
  });
  return Object.fromEntries(WEBHOOK_EVENT_TYPES.map((t) => [t, post(t)]));
}

export const webhookRoutes =
  (deps: Deps, cfg: ApiConfig): FastifyPluginAsyncTypebox =>
  async (app) => {
    const ctx: WebhookCtx = { deps, cfg: cfg.webhooks, policy: addressPolicy(cfg.webhooks) };
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
      async (req) => createEndpoint(ctx, req.actor, req.body),
    );
    app.get(
      '/webhook_endpoints',
      { schema: { operationId: 'listWebhookEndpoints', tags, querystring: ListQuery, response: { 200: ListOf(WebhookEndpointObject) } } },
      async (req) => listEndpoints(deps, req.actor, req.query),
    );
    app.get(
      '/webhook_endpoints/:id',
      { schema: { operationId: 'retrieveWebhookEndpoint', tags, params: IdParams, response: { 200: WebhookEndpointObject } } },
      async (req) => retrieveEndpoint(deps, req.actor, req.params.id),
    );
    app.post(
      '/webhook_endpoints/:id',
      {
        config: admin,
        schema: { operationId: 'updateWebhookEndpoint', tags, params: IdParams, body: UpdateWebhookRequest, response: { 200: WebhookEndpointObject } },
      },
      async (req) => updateEndpoint(ctx, req.actor, req.params.id, req.body),
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
      async (req) => deleteEndpoint(deps, req.actor, req.params.id),
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
      async (req) => rotateSecret(deps, req.actor, req.params.id),
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
      async (req) => testEndpoint(ctx, req.actor, req.params.id, req.body.event_type),
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
      async (req) => listDeliveries(deps, req.actor, req.params.id, req.query),
    );
  };
