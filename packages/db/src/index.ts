// @crucible/db: the only importer of the Prisma client. It hands out repositories that return
// domain records (the client and its types never leave this package), connected through the `pg`
// driver adapter (Prisma 7's Wasm query compiler: no native engine).

import { guard } from '@crucible/domain';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/client';
import { EvaluationRepository } from './repositories/evaluations';
import { FileRepository } from './repositories/files';
import { JobRepository } from './repositories/jobs';
import { ModelRepository } from './repositories/models';
import { ProjectRepository } from './repositories/projects';
import { WebhookRepository } from './repositories/webhooks';

export { deployMigrations, migrationNames } from './migrations';
export { findModelRef, type ModelRef } from './model-refs';
export type { NewEvaluation } from './repositories/evaluations';
export type { FileOutcome, NewFile } from './repositories/files';
export type { JobChanges, NewJob, NewModel, TransitionOptions } from './repositories/jobs';
export type { NewKey, ProjectUsage } from './repositories/projects';
export type { DueDelivery, WebhookDeliveryRecord, WebhookEndpointRecord } from './repositories/webhooks';
export { DEFAULT_DATABASE_URL, databaseUrl, ensureDatabase } from './url';
export { EvaluationRepository, FileRepository, JobRepository, ModelRepository, ProjectRepository, WebhookRepository };

export interface Store {
  projects: ProjectRepository;
  files: FileRepository;
  jobs: JobRepository;
  models: ModelRepository;
  evaluations: EvaluationRepository;
  webhooks: WebhookRepository;
  /** One round trip to the database (readiness checks); ServiceUnavailableError when it is down. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** Give up connecting after this long (so a request never hangs on a dead database). Default 5 s. */
  connectTimeoutMs?: number;
  /** Pool size. Default 10. */
  maxConnections?: number;
}

export function createStore(url: string, opts: StoreOptions = {}): Store {
  const adapter = new PrismaPg({ connectionString: url, connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000, max: opts.maxConnections ?? 10 });
  const prisma = new PrismaClient({ adapter });
  return {
    projects: new ProjectRepository(prisma),
    files: new FileRepository(prisma),
    jobs: new JobRepository(prisma),
    models: new ModelRepository(prisma),
    evaluations: new EvaluationRepository(prisma),
    webhooks: new WebhookRepository(prisma),
    ping: () => guard('database', async () => void (await prisma.$queryRawUnsafe('SELECT 1'))),
    close: () => prisma.$disconnect(),
  };
}
