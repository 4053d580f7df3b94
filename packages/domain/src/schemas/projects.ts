// Projects and their API keys, and webhook endpoints (shaped like OpenAI's webhook endpoints).
import { Type } from '@sinclair/typebox';
import { ProjectLimitsObject } from '../limits';
import { Nullable } from './common';

/** Names of projects, keys and webhook endpoints: printable, at most 128 characters. */
export const NAME_MAX = 128;
const Name = (description: string) => Type.String({ minLength: 1, maxLength: NAME_MAX, description });

export const KeyScopeSchema = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('admin'), Type.Literal('operator')], {
  description:
    'read: GET routes. write: also create, change and delete resources. admin: also the project’s keys and webhooks. operator (the server operator’s; only an operator key grants it): also new projects.',
});

export const ApiKeyObject = Type.Object({
  id: Type.String(),
  object: Type.Literal('api_key'),
  name: Type.String(),
  /** the secret's first characters, to recognise it */
  prefix: Type.String(),
  scopes: Type.Array(KeyScopeSchema),
  project_id: Type.String(),
  created_at: Type.Integer(),
  last_used_at: Nullable(Type.Integer({ description: 'Updated at most once a minute.' })),
  revoked_at: Nullable(Type.Integer()),
  secret: Type.Optional(Type.String({ description: 'The key itself: shown only in the answer that creates it.' })),
});

export const CreateApiKeyRequest = Type.Object(
  {
    name: Name('What the key is for.'),
    scopes: Type.Optional(Type.Array(KeyScopeSchema, { minItems: 1, maxItems: 3, uniqueItems: true, description: 'Default: ["read", "write"].' })),
  },
  { additionalProperties: false },
);

export const ProjectObject = Type.Object({
  id: Type.String(),
  object: Type.Literal('project'),
  name: Type.String(),
  created_at: Type.Integer(),
  limits: ProjectLimitsObject,
  usage: Type.Object({ storage_bytes: Type.Integer(), queued_jobs: Type.Integer(), running_jobs: Type.Integer() }),
  api_key: Type.Optional(ApiKeyObject),
});

export const CreateProjectRequest = Type.Object({ name: Name('The project’s name.') }, { additionalProperties: false });

export const ProjectKeyParams = Type.Object({ id: Type.String({ maxLength: 64 }), key_id: Type.String({ maxLength: 64 }) });

/** Events a webhook endpoint can subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  'fine_tuning.job.succeeded',
  'fine_tuning.job.failed',
  'fine_tuning.job.cancelled',
  'evaluation.succeeded',
  'evaluation.failed',
  'evaluation.cancelled',
] as const;

const EventType = Type.Union(WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t)));
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
  payload: Type.Record(Type.String(), Type.Unknown()),
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  next_attempt_at: Nullable(Type.Integer()),
  last_status_code: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
  created_at: Type.Integer(),
  delivered_at: Nullable(Type.Integer()),
});
