// /v1/projects: a key sees its own project (limits in force and usage); an admin key creates
// projects and creates, lists and revokes its project's keys. Revocation takes effect on the next
// request in every API process (the key caches are told over Redis).
import {
  ApiKeyObject,
  type ApiKeyRecord,
  CreateApiKeyRequest,
  CreateProjectRequest,
  CrucibleError,
  effectiveLimits,
  IdParams,
  type KeyScope,
  type LimitOverrides,
  ListOf,
  limitsObject,
  ProjectKeyParams,
  ProjectObject,
  type ProjectRecord,
} from '@crucible/domain';
import type { Static } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { type Actor, createProjectWithKey, hasScope, newSecretKey } from '../auth';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { page, unix } from '../pagination';

const tags = ['projects'];
type IdReq = { params: { id: string } };

export function keyObject(k: ApiKeyRecord, secret?: string): Static<typeof ApiKeyObject> {
  return {
    id: k.id,
    object: 'api_key',
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    project_id: k.projectId,
    created_at: unix(k.createdAt) as number,
    last_used_at: unix(k.lastUsedAt),
    revoked_at: unix(k.revokedAt),
    ...(secret ? { secret } : {}),
  };
}

/** A key sees only its own project: any other id is answered as missing. */
function ownProject(actor: Actor, id: string): void {
  if (id !== actor.projectId) throw new CrucibleError('project_not_found', `no project ${id} for this API key`, 'project_id');
}

function keyNotFound(keyId: string): never {
  throw new CrucibleError('api_key_not_found', `no API key ${keyId} in this project`, 'key_id');
}

async function projectObject(deps: Deps, cfg: ApiConfig, p: ProjectRecord): Promise<Static<typeof ProjectObject>> {
  const usage = await deps.store.projects.usage(p.id);
  return {
    id: p.id,
    object: 'project',
    name: p.name,
    created_at: unix(p.createdAt) as number,
    limits: limitsObject(effectiveLimits(cfg.limits, p.limits as LimitOverrides | null)),
    usage: { storage_bytes: usage.storageBytes, queued_jobs: usage.queuedJobs, running_jobs: usage.runningJobs },
  };
}

export const projectRoutes =
  (deps: Deps, cfg: ApiConfig): FastifyPluginAsync =>
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
      async (req) => {
        const { name } = req.body as Static<typeof CreateProjectRequest>;
        const created = await createProjectWithKey(deps.store, name);
        const project = (await deps.store.projects.get(created.projectId)) as ProjectRecord;
        const key = (await deps.store.projects.getKey(created.projectId, created.keyId)) as ApiKeyRecord;
        return { ...(await projectObject(deps, cfg, project)), api_key: keyObject(key, created.secret) };
      },
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
      async (req) => {
        const id = (req as IdReq).params.id;
        ownProject(req.actor, id);
        const p = await deps.store.projects.get(id);
        if (!p) throw new CrucibleError('project_not_found', `no project ${id}`, 'project_id');
        return projectObject(deps, cfg, p);
      },
    );
    app.get(
      '/projects/:id/api_keys',
      { config: admin, schema: { operationId: 'listApiKeys', tags, params: IdParams, response: { 200: ListOf(ApiKeyObject) } } },
      async (req) => {
        const id = (req as IdReq).params.id;
        ownProject(req.actor, id);
        return page(
          (await deps.store.projects.listKeys(id)).map((k) => keyObject(k)),
          false,
        );
      },
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
      async (req) => {
        const id = (req as IdReq).params.id;
        ownProject(req.actor, id);
        const b = req.body as Static<typeof CreateApiKeyRequest>;
        const k = newSecretKey();
        const scopes: KeyScope[] = b.scopes ?? ['read', 'write'];
        if (scopes.includes('operator') && !hasScope(req.actor, 'operator')) {
          throw new CrucibleError('forbidden', 'only an operator key may grant the operator scope', 'scopes');
        }
        const key = await deps.store.projects.createKey(id, { keyId: k.keyId, keyHash: k.hash, keyPrefix: k.prefix, name: b.name, scopes });
        return keyObject(key, k.secret);
      },
    );
    app.get(
      '/projects/:id/api_keys/:key_id',
      { config: admin, schema: { operationId: 'retrieveApiKey', tags, params: ProjectKeyParams, response: { 200: ApiKeyObject } } },
      async (req) => {
        const { id, key_id } = req.params as { id: string; key_id: string };
        ownProject(req.actor, id);
        return keyObject((await deps.store.projects.getKey(id, key_id)) ?? keyNotFound(key_id));
      },
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
      async (req) => {
        const { id, key_id } = req.params as { id: string; key_id: string };
        ownProject(req.actor, id);
        const r = (await deps.store.projects.revokeKey(id, key_id)) ?? keyNotFound(key_id);
        await deps.keys.forget(r.hash);
        return keyObject(r.key);
      },
    );
  };
