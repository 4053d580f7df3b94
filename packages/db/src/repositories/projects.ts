// Projects, their API keys (stored as sha256 hashes; secrets are never stored) and their usage.
import type { ApiKeyRecord, KeyScope, ProjectRecord } from '@crucible/domain';
import { type ApiKey as ApiKeyRow, Prisma, type Project as ProjectRow } from '../../generated/client';
import { Repository, STORAGE_USED_SQL } from './base';

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
  /**
   * Holds `bytes` of the project's storage for an upload that has no record yet (a model import),
   * if `quota` leaves room: `{ used }` and nothing held otherwise.
   */
  async reserveStorage(r: { id: string; projectId: string; bytes: number; storagePrefix: string }, quota: number): Promise<{ used: number } | null> {
    const out = await this.withStorageRoom(r.projectId, r.bytes, quota, async (q) => {
      await q(`INSERT INTO storage_reservations (id, project_id, bytes, storage_prefix, created_at) VALUES ($1, $2, $3, $4, $5)`, [
        r.id,
        r.projectId,
        r.bytes,
        r.storagePrefix,
        new Date().toISOString(),
      ]);
      return null;
    });
    return out && 'used' in out ? out : null;
  }

  async releaseStorage(projectId: string, id: string): Promise<void> {
    await this.sql('DELETE FROM storage_reservations WHERE id = $1 AND project_id = $2', [id, projectId]);
  }

  /** Reservations older than `olderThan` (their upload's process died): each with the prefix its objects were written under. */
  async staleReservations(olderThan: Date): Promise<Array<{ id: string; projectId: string; storagePrefix: string }>> {
    return this.sql<{ id: string; projectId: string; storagePrefix: string }>(
      'SELECT id, project_id AS "projectId", storage_prefix AS "storagePrefix" FROM storage_reservations WHERE created_at < $1 LIMIT 1000',
      [olderThan.toISOString()],
    );
  }

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
  /** The key with this secret's hash, revoked or not (revokedAt says). */
  async keyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const k = await this.run((db) => db.apiKey.findFirst({ where: { hash } }));
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
      `SELECT ${STORAGE_USED_SQL} AS storage,
              (SELECT count(*) FROM jobs WHERE project_id = $1 AND status = 'queued') AS queued,
              (SELECT count(*) FROM jobs WHERE project_id = $1 AND status IN ('validating_files', 'running')) AS running`,
      [projectId],
    );
    const r = rows[0];
    return { storageBytes: Number(r?.storage ?? 0), queuedJobs: Number(r?.queued ?? 0), runningJobs: Number(r?.running ?? 0) };
  }
}
