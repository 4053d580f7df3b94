// Webhook endpoints (shaped like OpenAI's) and the events they receive. An event is written when
// a job or an evaluation ends, in the transaction of its status change whoever makes it
// (packages/db/src/webhook-outbox.ts writes that SQL from the declarations here), and sent signed
// by the API's dispatcher; its body is built by webhookEvent() alone.
import { type Static, Type } from '@sinclair/typebox';
import { Nullable } from './common';
import { Name } from './projects';

/** What webhook events are about: a fine-tuning job (ftjob-…) or an evaluation (eval-…). */
export const WEBHOOK_RESOURCES = ['fine_tuning.job', 'evaluation'] as const;
export type WebhookResource = (typeof WEBHOOK_RESOURCES)[number];

/** The statuses that send an event: a resource's end. */
export const WEBHOOK_ENDINGS = ['succeeded', 'failed', 'cancelled'] as const;
export type WebhookEnding = (typeof WEBHOOK_ENDINGS)[number];

export type WebhookEventType = `${WebhookResource}.${WebhookEnding}`;

/** Events a webhook endpoint can subscribe to: `<resource>.<ending>`. */
export const WEBHOOK_EVENT_TYPES: readonly WebhookEventType[] = WEBHOOK_RESOURCES.flatMap((r) => WEBHOOK_ENDINGS.map((e) => `${r}.${e}` as const));

const EventType = Type.Union(WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t)));

/** The body of every webhook POST (OpenAI's event shape), signed by Standard Webhooks headers. */
export const WebhookEvent = Type.Object(
  {
    id: Type.String({ description: 'evt-…: the same for every endpoint it goes to and every retry (the webhook-id header).' }),
    object: Type.Literal('event'),
    type: EventType,
    created_at: Type.Integer({ description: 'Unix seconds: when the resource ended.' }),
    data: Type.Object({ id: Type.String({ description: 'The job or evaluation that ended (test events: "test").' }) }),
  },
  { $id: 'WebhookEvent' },
);
export type WebhookEvent = Static<typeof WebhookEvent>;

/** The event `id` that says `resourceId` reached the status of `type` at `at`. */
export function webhookEvent(id: string, type: WebhookEventType, resourceId: string, at: Date): WebhookEvent {
  return { id, object: 'event', type, created_at: Math.floor(at.getTime() / 1000), data: { id: resourceId } };
}
const WebhookUrl = Type.String({ minLength: 8, maxLength: 2048, description: 'http(s) URL that receives the signed POSTs.' });

export const WebhookEndpointObject = Type.Object({
  id: Type.String(),
  object: Type.Literal('webhook_endpoint'),
  name: Type.String(),
  url: Type.String(),
  event_types: Type.Array(Type.String()),
  created_at: Type.Integer(),
  updated_at: Type.Integer(),
  signing_secret_hint: Nullable(Type.String()),
  signing_secret: Type.Optional(Type.String({ description: 'whsec_…: shown only when the endpoint is created or its secret rotated.' })),
});

export const CreateWebhookRequest = Type.Object(
  {
    name: Name('What the endpoint is for.'),
    url: WebhookUrl,
    event_types: Type.Array(EventType, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length, uniqueItems: true }),
  },
  { additionalProperties: false },
);

export const UpdateWebhookRequest = Type.Object(
  {
    name: Type.Optional(Name('A new name.')),
    url: Type.Optional(WebhookUrl),
    event_types: Type.Optional(Type.Array(EventType, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length, uniqueItems: true })),
  },
  { additionalProperties: false },
);

export const TestWebhookRequest = Type.Object({ event_type: EventType }, { additionalProperties: false });

export const WebhookTestResult = Type.Object({
  object: Type.Literal('webhook_endpoint.test'),
  webhook_endpoint_id: Type.String(),
  event_type: Type.String(),
  status_code: Type.Integer({ description: 'The receiver’s status (a receiver that cannot be reached is a 422 webhook_unreachable instead).' }),
  success: Type.Literal(true, { description: 'As OpenAI’s: the test completed; status_code says what the receiver answered.' }),
  delivered: Type.Boolean({ description: 'Crucible: whether the receiver answered 2xx (what a real delivery counts as delivered).' }),
});

export const WebhookDeliveryObject = Type.Object({
  id: Type.String(),
  object: Type.Literal('webhook_endpoint.delivery'),
  webhook_endpoint_id: Type.String(),
  event_id: Type.String(),
  event_type: Type.String(),
  payload: WebhookEvent,
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  next_attempt_at: Nullable(Type.Integer()),
  last_status_code: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
  created_at: Type.Integer(),
  delivered_at: Nullable(Type.Integer()),
});
