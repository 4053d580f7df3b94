// Trained models (the preset shapes are not records).
import type { ModelRecord } from '@crucible/domain';
import type { Model as ModelRow, Prisma } from '../../generated/client';
import { Repository } from './base';
import { jsonOrNull } from './json-columns';

function modelRecord(m: ModelRow): ModelRecord {
  return {
    id: m.id,
    projectId: m.projectId,
    jobId: m.jobId,
    baseModel: m.baseModel,
    arch: m.arch as ModelRecord['arch'],
    config: m.config as ModelRecord['config'],
    source: m.source as ModelRecord['source'],
    peft: (m.peft ?? null) as ModelRecord['peft'],
    storageKey: m.storageKey,
    createdAt: m.createdAt,
  };
}

export class ModelRepository extends Repository {
  async get(projectId: string, id: string): Promise<ModelRecord | null> {
    const m = await this.run((db) => db.model.findFirst({ where: { id, projectId } }));
    return m ? modelRecord(m) : null;
  }

  async list(projectId: string): Promise<ModelRecord[]> {
    return (await this.run((db) => db.model.findMany({ where: { projectId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }))).map(modelRecord);
  }

  /** An imported model (its files are already stored). */
  async create(m: Omit<ModelRecord, 'createdAt' | 'jobId'>): Promise<ModelRecord> {
    const row = await this.run((db) =>
      db.model.create({
        data: {
          id: m.id,
          projectId: m.projectId,
          baseModel: m.baseModel,
          arch: m.arch,
          config: m.config as Prisma.InputJsonValue,
          source: m.source,
          peft: jsonOrNull(m.peft),
          storageKey: m.storageKey,
        },
      }),
    );
    return modelRecord(row);
  }

  /**
   * An imported model whose upload held the storage reservation `reservationId`: the record takes
   * the files' real size (`bytes`) and the reservation goes, in one transaction that checks the
   * project's quota against the real size. `{ used }` (nothing written, the reservation kept) when
   * the real size does not fit.
   */
  async createImported(
    m: Omit<ModelRecord, 'createdAt' | 'jobId'>,
    bytes: number,
    reservationId: string,
    quota: number,
  ): Promise<ModelRecord | { used: number }> {
    const reserved = Number(
      (await this.sql<{ bytes: string }>('SELECT bytes FROM storage_reservations WHERE id = $1 AND project_id = $2', [reservationId, m.projectId]))[0]?.bytes ??
        0,
    );
    const out = await this.withStorageRoom(m.projectId, bytes - reserved, quota, async (q) => {
      await q(
        `INSERT INTO models (id, project_id, base_model, arch, config, source, peft, storage_key, bytes, created_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8, $9, $10)`,
        [
          m.id,
          m.projectId,
          m.baseModel,
          m.arch,
          JSON.stringify(m.config),
          m.source,
          m.peft ? JSON.stringify(m.peft) : null,
          m.storageKey,
          bytes,
          new Date().toISOString(),
        ],
      );
      await q('DELETE FROM storage_reservations WHERE id = $1 AND project_id = $2', [reservationId, m.projectId]);
      return null;
    });
    if (out && 'used' in out) return out;
    return (await this.get(m.projectId, m.id)) as ModelRecord;
  }

  async delete(projectId: string, id: string): Promise<void> {
    await this.run((db) => db.model.deleteMany({ where: { id, projectId } }));
  }
}
