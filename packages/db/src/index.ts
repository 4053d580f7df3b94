// @crucible/db: the only importer of the Prisma client. Connects through the `pg` driver
// adapter (Prisma 7's Wasm query compiler: no native engine).
import { PrismaPg } from '@prisma/adapter-pg';
import { Prisma, PrismaClient } from '../generated/client';

export type * from '../generated/models';
export { DEFAULT_DATABASE_URL, databaseUrl, ensureDatabase } from './url';
export { Prisma, PrismaClient };
export type Db = PrismaClient;

export function createDb(url: string): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
}

/** Unique-constraint violation (e.g. a duplicate key). */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
}
export { deployMigrations, migrationNames } from './migrations';
