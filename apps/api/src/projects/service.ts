// The project and API-key operations behind /v1/projects: a key sees only its own project; keys
// are created with a secret shown once and revoked in every API process (the key caches are told
// over Redis).
import {
  type ApiKeyObject,
  type ApiKeyRecord,
  type CreateApiKeyRequest,
  CrucibleError,
  effectiveLimits,
  type KeyScope,
  type LimitOverrides,
  limitsObject,
  type ProjectObject,
  type ProjectRecord,
} from '@crucible/domain';
import type { Static } from '@sinclair/typebox';
import { type Actor, createProjectWithKey, hasScope, newSecretKey } from '../auth';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { page, unix } from '../pagination';

type Ctx = { deps: Deps; cfg: ApiConfig };

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

async function projectObject({ deps, cfg }: Ctx, p: ProjectRecord): Promise<Static<typeof ProjectObject>> {
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

/** A new project with the server's default limits and its first key (read, write and admin). */
export async function createProject(ctx: Ctx, name: string) {
  const { store } = ctx.deps;
  const created = await createProjectWithKey(store, name);
  const project = (await store.projects.get(created.projectId)) as ProjectRecord;
  const key = (await store.projects.getKey(created.projectId, created.keyId)) as ApiKeyRecord;
  return { ...(await projectObject(ctx, project)), api_key: keyObject(key, created.secret) };
}

export async function getProject(ctx: Ctx, actor: Actor, id: string) {
  ownProject(actor, id);
  const p = await ctx.deps.store.projects.get(id);
  if (!p) throw new CrucibleError('project_not_found', `no project ${id}`, 'project_id');
  return projectObject(ctx, p);
}

/** The calling key and its project (any scope): a client learns its project and what it may do. */
export async function getCaller(ctx: Ctx, actor: Actor) {
  const key = (await ctx.deps.store.projects.getKey(actor.projectId, actor.keyId)) ?? keyNotFound(actor.keyId);
  return { object: 'caller' as const, project: await getProject(ctx, actor, actor.projectId), api_key: keyObject(key) };
}

export async function listKeys(deps: Deps, actor: Actor, id: string) {
  ownProject(actor, id);
  return page(
    (await deps.store.projects.listKeys(id)).map((k) => keyObject(k)),
    false,
  );
}

/** A new key of the project; only an operator key may grant the operator scope. */
export async function createKey(deps: Deps, actor: Actor, id: string, b: Static<typeof CreateApiKeyRequest>) {
  ownProject(actor, id);
  const k = newSecretKey();
  const scopes: KeyScope[] = b.scopes ?? ['read', 'write'];
  if (scopes.includes('operator') && !hasScope(actor, 'operator')) {
    throw new CrucibleError('forbidden', 'only an operator key may grant the operator scope', 'scopes');
  }
  const key = await deps.store.projects.createKey(id, { keyId: k.keyId, keyHash: k.hash, keyPrefix: k.prefix, name: b.name, scopes });
  return keyObject(key, k.secret);
}

export async function getKey(deps: Deps, actor: Actor, id: string, keyId: string) {
  ownProject(actor, id);
  return keyObject((await deps.store.projects.getKey(id, keyId)) ?? keyNotFound(keyId));
}

/** Revokes a key: refused from the next request on, in every API process. */
export async function revokeKey(deps: Deps, actor: Actor, id: string, keyId: string) {
  ownProject(actor, id);
  const r = (await deps.store.projects.revokeKey(id, keyId)) ?? keyNotFound(keyId);
  await deps.keys.forget(r.hash);
  return keyObject(r.key);
}
