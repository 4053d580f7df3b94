// Offline Prisma migrations. The native Prisma CLI needs a schema-engine binary that these machines
// cannot download, so this script does the same jobs with Prisma's Wasm schema engine and `pg`:
//   create <name>  diff the last migration's schema snapshot against prisma/schema.prisma and write
//                  prisma/migrations/<timestamp>_<name>/migration.sql (+ schema.prisma snapshot)
//   deploy         apply pending migrations in order, recorded in _prisma_migrations (Prisma's own
//                  table and format, so `prisma migrate deploy/status` agree where the CLI works)
//   check          fail when schema.prisma has changes that no migration captures
// Where the native CLI works, `npx prisma migrate dev|deploy` on the same folder is equivalent.

import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { databaseUrl, ensureDatabase } from '../src/url';
import { loadSchemaEngine } from './schema-engine';

const root = resolve(import.meta.dirname, '../../..');
const schemaPath = join(root, 'prisma/schema.prisma');
const migrationsDir = join(root, 'prisma/migrations');

function migrationNames(): string[] {
  if (!existsSync(migrationsDir)) return [];
  return readdirSync(migrationsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(migrationsDir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort();
}

/** SQL that takes the schema snapshot of the last migration (or nothing) to schema.prisma. */
async function pendingSql(): Promise<string> {
  const SchemaEngine = await loadSchemaEngine();
  const { PrismaPg } = await import('@prisma/adapter-pg');
  const url = databaseUrl(process.env);
  await ensureDatabase(url);
  const { bindMigrationAwareSqlAdapterFactory } = await import('@prisma/driver-adapter-utils');
  // the engine expects Prisma's result-wrapped adapter; a diff between two schema files never queries
  const adapter = bindMigrationAwareSqlAdapterFactory(new PrismaPg({ connectionString: url }));
  const engine = await SchemaEngine.new({ datamodels: undefined }, () => {}, adapter);
  const names = migrationNames();
  const last = names.at(-1);
  const snapshot = last ? join(migrationsDir, last, 'schema.prisma') : undefined;
  const from =
    snapshot && existsSync(snapshot)
      ? { tag: 'schemaDatamodel' as const, files: [{ path: snapshot, content: readFileSync(snapshot, 'utf8') }] }
      : { tag: 'empty' as const };
  if (last && from.tag === 'empty') throw new Error(`migration ${last} has no schema.prisma snapshot`);
  const result = await engine.diff({
    from,
    to: { tag: 'schemaDatamodel', files: [{ path: schemaPath, content: readFileSync(schemaPath, 'utf8') }] },
    script: true,
    exitCode: true,
    filters: { externalTables: [], externalEnums: [] },
  });
  engine.free();
  const sql = (result.stdout ?? '').trim();
  return sql === '-- This is an empty migration.' ? '' : sql;
}

async function create(name: string): Promise<void> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error('migration name: lowercase letters, digits and _ only');
  const sql = await pendingSql();
  if (!sql) {
    console.log('schema.prisma has no changes: no migration written');
    return;
  }
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const dir = join(migrationsDir, `${stamp}_${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'migration.sql'), `${sql}\n`);
  writeFileSync(join(dir, 'schema.prisma'), readFileSync(schemaPath));
  writeFileSync(join(migrationsDir, 'migration_lock.toml'), 'provider = "postgresql"\n');
  console.log(`wrote ${dir}/migration.sql`);
}

async function check(): Promise<void> {
  const sql = await pendingSql();
  if (sql) {
    console.error('schema.prisma has changes with no migration. Run: npm run db:migrate:create -- <name>\n');
    console.error(sql);
    process.exit(1);
  }
  console.log(`migrations up to date with schema.prisma (${migrationNames().length} migrations)`);
}

/** Applies pending migrations; safe to run concurrently (advisory lock). */
export async function deploy(url = databaseUrl(process.env), log: (m: string) => void = console.log): Promise<void> {
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
    for (const name of migrationNames()) {
      const sql = readFileSync(join(migrationsDir, name, 'migration.sql'), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      if (done.has(name)) {
        if (done.get(name) !== checksum) log(`warning: migration ${name} was edited after it was applied`);
        continue;
      }
      const id = randomUUID();
      await client.query('BEGIN');
      try {
        await client.query('INSERT INTO "_prisma_migrations" (id, checksum, migration_name) VALUES ($1, $2, $3)', [id, checksum, name]);
        await client.query(sql);
        await client.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [id]);
        await client.query('COMMIT');
        log(`applied migration ${name}`);
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${name} failed: ${(err as Error).message}`);
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(72707369)').catch(() => {});
    await client.end();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const [cmd, arg] = process.argv.slice(2);
  const run = cmd === 'create' ? create(arg ?? 'change') : cmd === 'deploy' ? deploy() : cmd === 'check' ? check() : undefined;
  if (!run) {
    console.error('usage: migrate.ts create <name> | deploy | check');
    process.exit(2);
  }
  run.catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
