// Projects and their API keys (stored as sha256 hashes; secrets are never stored).
import type { ApiKeyRecord } from '@crucible/domain';
import { Repository } from './base';

export class ProjectRepository extends Repository {
  async createWithKey(p: { projectId: string; name: string; keyId: string; keyHash: string; keyPrefix: string }): Promise<void> {
    await this.run((db) =>
      db.project.create({
        data: { id: p.projectId, name: p.name, apiKeys: { create: { id: p.keyId, name: 'default', hash: p.keyHash, prefix: p.keyPrefix } } },
      }),
    );
  }

  async keyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const k = await this.run((db) => db.apiKey.findUnique({ where: { hash }, select: { id: true, projectId: true } }));
    return k ? { id: k.id, projectId: k.projectId } : null;
  }
}
