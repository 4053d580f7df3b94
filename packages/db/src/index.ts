// @crucible/db: the only importer of the Prisma client. It hands out repositories that return
// domain records (the client and its types never leave this package), connected through the `pg`
// driver adapter (Prisma 7's Wasm query compiler: no native engine).

import { guard } from '@crucible/domain';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/client';
import { EvaluationRepository } from './repositories/evaluations';
import { FileRepository } from './repositories/files';
import { JobRepository } from './repositories/jobs';
import { ModelRepository } from './repositories/models';
import { ProjectRepository } from './repositories/projects';
import { WebhookRepository } from './repositories/webhooks';

export { JOB_CHANGED_CHANNEL, JobCache } from './job-cache';
export { JOB_EVENT_CHANNEL, JobSignals } from './job-signals';
export { deployMigrations, MIGRATIONS_DIR, migrationNames } from './migrations';
export { findModelRef, type ModelRef } from './model-refs';
export type { NewEvaluation } from './repositories/evaluations';
export type { AttemptWriter } from './repositories/job-attempt';
export type { JobChanges, NewJob, NewModel, TransitionOptions } from './repositories/jobs';
export type { NewKey, ProjectUsage } from './repositories/projects';
export type { DueDelivery, WebhookDeliveryRecord, WebhookEndpointRecord } from './repositories/webhooks';
export { DEFAULT_DATABASE_URL, databaseUrl, ensureDatabase } from './url';
export { installWebhookOutbox, WEBHOOK_RESOURCE_TABLES, webhookOutboxSql } from './webhook-outbox';
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
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000, max: opts.maxConnections ?? 10 });
  pool.on('error', () => {}); // an idle client's error (the database restarted): the next query reconnects
  // one pool under Prisma and the repositories' few SQL statements (the cast bridges two @types/pg versions)
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool as unknown as ConstructorParameters<typeof PrismaPg>[0]) });
  return {
    projects: new ProjectRepository(prisma, pool),
    files: new FileRepository(prisma, pool),
    jobs: new JobRepository(prisma, pool),
    models: new ModelRepository(prisma, pool),
    evaluations: new EvaluationRepository(prisma, pool),
    webhooks: new WebhookRepository(prisma, pool),
    ping: () => guard('database', async () => void (await prisma.$queryRawUnsafe('SELECT 1'))),
    close: async () => {
      await prisma.$disconnect();
      await pool.end().catch(() => {});
    },
  };
}
