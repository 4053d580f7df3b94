// /v1/projects: a key sees its own project (limits in force and usage); an admin key creates
// projects and creates, lists and revokes its project's keys. Revocation takes effect on the next
// request in every API process (the key caches are told over Redis).
import { ApiKeyObject, CallerObject, CreateApiKeyRequest, CreateProjectRequest, IdParams, ListOf, ProjectKeyParams, ProjectObject } from '@crucible/domain';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { createKey, createProject, getCaller, getKey, getProject, listKeys, revokeKey } from './service';

const tags = ['projects'];

export const projectRoutes =
  (deps: Deps, cfg: ApiConfig): FastifyPluginAsyncTypebox =>
  async (app) => {
    const admin = { scope: 'admin' as const };
    app.post(
      '/projects',
      {
        // a tenant's admin key cannot mint projects (each comes with the server's full default limits)
        config: { scope: 'operator' as const },
        schema: {
          operationId: 'createProject',
          tags,
          body: CreateProjectRequest,
          response: { 200: ProjectObject },
          description:
            'A new project with the server’s default limits, and its first key (read, write and admin; the secret is shown once). Needs an operator key (npm run projects).',
        },
      },
      async (req) => createProject({ deps, cfg }, req.body.name),
    );
    app.get(
      '/projects/:id',
      {
        schema: {
          operationId: 'retrieveProject',
          tags,
          params: IdParams,
          response: { 200: ProjectObject },
          description: 'The project of this key, with the limits in force and the usage they are checked against.',
        },
      },
      async (req) => getProject({ deps, cfg }, req.actor, req.params.id),
    );
    app.get(
      '/me',
      {
        schema: {
          operationId: 'retrieveCaller',
          tags,
          response: { 200: CallerObject },
          description: 'The API key of this request (its scopes, never its secret) and its project with limits and usage.',
        },
      },
      async (req) => getCaller({ deps, cfg }, req.actor),
    );
    app.get(
      '/projects/:id/api_keys',
      { config: admin, schema: { operationId: 'listApiKeys', tags, params: IdParams, response: { 200: ListOf(ApiKeyObject) } } },
      async (req) => listKeys(deps, req.actor, req.params.id),
    );
    app.post(
      '/projects/:id/api_keys',
      {
        config: admin,
        schema: {
          operationId: 'createApiKey',
          tags,
          params: IdParams,
          body: CreateApiKeyRequest,
          response: { 200: ApiKeyObject },
          description: 'A new key; its secret is in this answer only.',
        },
      },
      async (req) => createKey(deps, req.actor, req.params.id, req.body),
    );
    app.get(
      '/projects/:id/api_keys/:key_id',
      { config: admin, schema: { operationId: 'retrieveApiKey', tags, params: ProjectKeyParams, response: { 200: ApiKeyObject } } },
      async (req) => getKey(deps, req.actor, req.params.id, req.params.key_id),
    );
    app.delete(
      '/projects/:id/api_keys/:key_id',
      {
        config: admin,
        schema: {
          operationId: 'revokeApiKey',
          tags,
          params: ProjectKeyParams,
          response: { 200: ApiKeyObject },
          description: 'Revokes the key: refused from the next request on, in every API process. The key stays listed with revoked_at.',
        },
      },
      async (req) => revokeKey(deps, req.actor, req.params.id, req.params.key_id),
    );
  };
