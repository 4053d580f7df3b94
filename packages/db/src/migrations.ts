// Applies the committed migrations (prisma/migrations) with `pg`, recording them in Prisma's own
// _prisma_migrations table and format, then installs what is made from code (webhook-outbox.ts).
// Used by `npm run db:migrate:deploy`, the quickstart and tests.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { installWebhookOutbox } from './webhook-outbox';

export const MIGRATIONS_DIR = resolve(import.meta.dirname, '../../../prisma/migrations');

export function migrationNames(dir = MIGRATIONS_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort();
}

const sqlChecksum = (dir: string, name: string) =>
  createHash('sha256')
    .update(readFileSync(join(dir, name, 'migration.sql'), 'utf8'))
    .digest('hex');

/**
 * Applies pending migrations, then the routines made from code (the webhook outbox) when they
 * changed; safe to run concurrently (advisory lock).
 */
export async function deployMigrations(url: string, log: (m: string) => void = console.log, dir = MIGRATIONS_DIR): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock(72707369)');
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const applied = await client.query<{ migration_name: string; checksum: string }>(
      'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    const done = new Map(applied.rows.map((r) => [r.migration_name, r.checksum]));
    const pending: string[] = [];
    for (const name of migrationNames(dir)) {
      const checksum = done.get(name);
      if (checksum === undefined) pending.push(name);
      else if (checksum !== sqlChecksum(dir, name)) log(`warning: migration ${name} was edited after it was applied`);
    }
    let installed = false;
    for (const [i, name] of pending.entries()) {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      const id = randomUUID();
      await client.query('BEGIN');
      try {
        await client.query('INSERT INTO "_prisma_migrations" (id, checksum, migration_name) VALUES ($1, $2, $3)', [id, sqlChecksum(dir, name), name]);
        await client.query(sql);
        // the routines made from code commit with the last migration: the schema is never without them
        if (i === pending.length - 1) installed = await installWebhookOutbox(client);
        await client.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [id]);
        await client.query('COMMIT');
        log(`applied migration ${name}`);
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${name} failed: ${(err as Error).message}`);
      }
    }
    if (pending.length === 0) {
      await client.query('BEGIN');
      try {
        installed = await installWebhookOutbox(client);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`installing the webhook outbox failed: ${(err as Error).message}`);
      }
    }
    if (installed) log('installed the webhook outbox');
  } finally {
    await client.query('SELECT pg_advisory_unlock(72707369)').catch(() => {});
    await client.end();
  }
}
