// Bearer-key authentication: every /v1 request resolves to the project that owns its key.
import { createHash } from 'node:crypto';
import type { Store } from '@crucible/db';
import { CrucibleError, ID_PREFIX, newApiKeySecret, newId } from '@crucible/domain';

export interface Actor {
  projectId: string;
  keyId: string;
}

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export async function authenticate(store: Store, header: string | undefined): Promise<Actor> {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!m) throw new CrucibleError('unauthorized', 'missing API key: send Authorization: Bearer <key>', 'authorization');
  const key = await store.projects.keyByHash(hashKey(m[1] as string));
  if (!key) throw new CrucibleError('unauthorized', 'invalid API key', 'authorization');
  return { projectId: key.projectId, keyId: key.id };
}

/** Creates a project and a key for it; the secret is returned once and only its hash is stored. */
export async function createProjectWithKey(store: Store, name: string): Promise<{ projectId: string; keyId: string; secret: string }> {
  const secret = newApiKeySecret();
  const projectId = newId(ID_PREFIX.project);
  const keyId = newId(ID_PREFIX.apiKey);
  await store.projects.createWithKey({ projectId, name, keyId, keyHash: hashKey(secret), keyPrefix: secret.slice(0, 16) });
  return { projectId, keyId, secret };
}
