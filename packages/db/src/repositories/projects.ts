// Projects, their API keys (stored as sha256 hashes; secrets are never stored) and their usage.
import type { ApiKeyRecord, KeyScope, ProjectRecord } from '@crucible/domain';
import { type ApiKey as ApiKeyRow, Prisma, type Project as ProjectRow } from '../../generated/client';
import { Repository } from './base';

function keyRecord(k: ApiKeyRow): ApiKeyRecord {
  return {
    id: k.id,
    projectId: k.projectId,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes as KeyScope[],
    createdAt: k.createdAt,
    lastUsedAt: k.lastUsedAt,
    revokedAt: k.revokedAt,
  };
}

function projectRecord(p: ProjectRow): ProjectRecord {
  return { id: p.id, name: p.name, createdAt: p.createdAt, limits: (p.limits as Record<string, number> | null) ?? null };
}

export interface NewKey {
  keyId: string;
  keyHash: string;
  keyPrefix: string;
  name: string;
  scopes: KeyScope[];
}

/** Usage the limits are checked against. */
export interface ProjectUsage {
  storageBytes: number;
  queuedJobs: number;
  runningJobs: number;
}

export class ProjectRepository extends Repository {
  async createWithKey(p: { projectId: string; name: string; key: NewKey }): Promise<ProjectRecord> {
    const k = p.key;
    return projectRecord(
      await this.run((db) =>
        db.project.create({
          data: { id: p.projectId, name: p.name, apiKeys: { create: { id: k.keyId, name: k.name, hash: k.keyHash, prefix: k.keyPrefix, scopes: k.scopes } } },
        }),
      ),
    );
  }

  async get(id: string): Promise<ProjectRecord | null> {
    const p = await this.run((db) => db.project.findUnique({ where: { id } }));
    return p ? projectRecord(p) : null;
  }

  async setLimits(id: string, limits: Record<string, number> | null): Promise<ProjectRecord | null> {
    const r = await this.run((db) => db.project.updateMany({ where: { id }, data: { limits: limits ? (limits as Prisma.InputJsonValue) : Prisma.DbNull } }));
    return r.count ? this.get(id) : null;
  }

  /** A key that is not revoked, by the hash of its secret. */
  async keyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const k = await this.run((db) => db.apiKey.findFirst({ where: { hash, revokedAt: null } }));
    return k ? keyRecord(k) : null;
  }

  async createKey(projectId: string, k: NewKey): Promise<ApiKeyRecord> {
    return keyRecord(
      await this.run((db) => db.apiKey.create({ data: { id: k.keyId, projectId, name: k.name, hash: k.keyHash, prefix: k.keyPrefix, scopes: k.scopes } })),
    );
  }

  async listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    return (await this.run((db) => db.apiKey.findMany({ where: { projectId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }))).map(keyRecord);
  }

  async getKey(projectId: string, id: string): Promise<ApiKeyRecord | null> {
    const k = await this.run((db) => db.apiKey.findFirst({ where: { id, projectId } }));
    return k ? keyRecord(k) : null;
  }

  /** Revokes a key; returns it with its hash (to evict it from caches), or null if there is none. */
  async revokeKey(projectId: string, id: string): Promise<{ key: ApiKeyRecord; hash: string } | null> {
    return this.run(async (db) => {
      await db.apiKey.updateMany({ where: { id, projectId, revokedAt: null }, data: { revokedAt: new Date() } });
      const k = await db.apiKey.findFirst({ where: { id, projectId } });
      return k ? { key: keyRecord(k), hash: k.hash } : null;
    });
  }

  async touchKeys(ids: string[], at: Date): Promise<void> {
    if (ids.length === 0) return;
    await this.run((db) => db.apiKey.updateMany({ where: { id: { in: ids } }, data: { lastUsedAt: at } }));
  }

  /** What the limits are checked against, in one statement (job creation and uploads read it). */
  async usage(projectId: string): Promise<ProjectUsage> {
    const rows = await this.sql<{ storage: string | null; queued: string; running: string }>(
      `SELECT (SELECT sum(bytes) FROM files WHERE project_id = $1) AS storage,
              (SELECT count(*) FROM jobs WHERE project_id = $1 AND status = 'queued') AS queued,
              (SELECT count(*) FROM jobs WHERE project_id = $1 AND status IN ('validating_files', 'running')) AS running`,
      [projectId],
    );
    const r = rows[0];
    return { storageBytes: Number(r?.storage ?? 0), queuedJobs: Number(r?.queued ?? 0), runningJobs: Number(r?.running ?? 0) };
  }
}
