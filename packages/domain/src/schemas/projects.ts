// Projects and their API keys.
import { Type } from '@sinclair/typebox';
import { ProjectLimitsObject } from '../limits';
import { Nullable } from './common';

/** Names of projects, keys and webhook endpoints: printable, at most 128 characters. */
export const NAME_MAX = 128;
export const Name = (description: string) => Type.String({ minLength: 1, maxLength: NAME_MAX, description });

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

export const CallerObject = Type.Object(
  {
    object: Type.Literal('caller'),
    project: ProjectObject,
    api_key: ApiKeyObject,
  },
  { $id: 'Caller', description: 'The key a request was made with and its project: what a client may show and do.' },
);
