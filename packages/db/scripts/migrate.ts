// Offline Prisma migrations. The native Prisma CLI needs a schema-engine binary that these machines
// cannot download, so this script does the same jobs with Prisma's Wasm schema engine and `pg`:
//   create <name>  diff the last migration's schema snapshot against prisma/schema.prisma and write
//                  prisma/migrations/<timestamp>_<name>/migration.sql (+ schema.prisma snapshot)
//   deploy         apply pending migrations in order, recorded in _prisma_migrations (Prisma's own
//                  table and format, so `prisma migrate deploy/status` agree where the CLI works)
//   check          fail when schema.prisma has changes that no migration captures
// Where the native CLI works, `npx prisma migrate dev|deploy` on the same folder is equivalent.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { deployMigrations, migrationNames } from '../src/migrations';
import { databaseUrl, ensureDatabase } from '../src/url';
import { loadSchemaEngine } from './schema-engine';

const root = resolve(import.meta.dirname, '../../..');
const schemaFlag = process.argv.indexOf('--schema');
const schemaPath = schemaFlag > 0 ? resolve(process.argv[schemaFlag + 1] as string) : join(root, 'prisma/schema.prisma');
const migrationsDir = join(root, 'prisma/migrations');
const deploy = () => deployMigrations(databaseUrl(process.env));

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
  const names = migrationNames(migrationsDir);
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
  console.log(`migrations up to date with schema.prisma (${migrationNames(migrationsDir).length} migrations)`);
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
