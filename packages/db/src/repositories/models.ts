// Trained models (the preset shapes are not records).
import type { ModelRecord } from '@crucible/domain';
import type { Model as ModelRow } from '../../generated/client';
import { Prisma } from '../../generated/client';
import { Repository } from './base';

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
          peft: m.peft ? (m.peft as unknown as Prisma.InputJsonValue) : Prisma.DbNull,
          storageKey: m.storageKey,
        },
      }),
    );
    return modelRecord(row);
  }

  async delete(projectId: string, id: string): Promise<void> {
    await this.run((db) => db.model.deleteMany({ where: { id, projectId } }));
  }
}
