// What every repository shares: the Prisma client (never exported from this package) and the
// guard that turns a database that cannot be reached into ServiceUnavailableError('database').
import { guard } from '@crucible/domain';
import type { PrismaClient } from '../../generated/client';

export abstract class Repository {
  constructor(protected readonly prisma: PrismaClient) {}

  protected run<T>(fn: (db: PrismaClient) => Promise<T>): Promise<T> {
    return guard('database', () => fn(this.prisma));
  }
}

/** Rows as cursor pages: `take` one more than the limit to learn whether there is more. */
export function pageOf<T>(rows: T[], limit: number): { items: T[]; hasMore: boolean } {
  return { items: rows.slice(0, limit), hasMore: rows.length > limit };
}
