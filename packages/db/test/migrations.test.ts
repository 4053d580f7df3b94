// Migrations: the committed ones apply (twice is a no-op) in Prisma's format, and the check fails
// when schema.prisma has a change that no migration captures.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { deployMigrations, ensureDatabase, migrationNames } from '../src/index';

const root = resolve(import.meta.dirname, '../../..');
const admin = process.env.TEST_DATABASE_URL ?? 'postgresql://root@localhost/postgres?host=/var/run/postgresql';
const url = new URL(admin);
url.pathname = `/crucible_migrations_${process.pid}`;

afterAll(async () => {
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS "crucible_migrations_${process.pid}" WITH (FORCE)`);
  await c.end();
});

function migrate(...args: string[]) {
  return spawnSync('npx', ['tsx', 'packages/db/scripts/migrate.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: url.toString() },
  });
}

describe('migrations', () => {
  it('apply in order into _prisma_migrations, and a second deploy changes nothing', async () => {
    await ensureDatabase(url.toString());
    const logs: string[] = [];
    await deployMigrations(url.toString(), (m) => logs.push(m));
    expect(logs).toEqual(migrationNames().map((n) => `applied migration ${n}`));
    await deployMigrations(url.toString(), (m) => logs.push(m));
    expect(logs).toHaveLength(migrationNames().length);
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    const rows = await c.query('SELECT migration_name, checksum, finished_at FROM _prisma_migrations ORDER BY started_at');
    const tables = await c.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename");
    await c.end();
    expect(rows.rows.map((r) => r.migration_name)).toEqual(migrationNames());
    expect(rows.rows[0].checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(tables.rows.map((r) => r.tablename)).toEqual(
      expect.arrayContaining(['projects', 'api_keys', 'files', 'jobs', 'job_events', 'job_checkpoints', 'job_metrics', 'models']),
    );
  });

  it('check passes on the committed schema and fails on an unmigrated change', () => {
    const ok = migrate('check');
    expect(ok.status, ok.stderr).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'crucible-schema-'));
    const changed = join(dir, 'schema.prisma');
    const schema = readFileSync(join(root, 'prisma/schema.prisma'), 'utf8').replace('  name      String\n', '  name      String\n  color     String?\n');
    writeFileSync(changed, schema);
    const bad = migrate('check', '--schema', changed);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/schema.prisma has changes with no migration/);
    expect(bad.stderr).toMatch(/ALTER TABLE "projects" ADD COLUMN\s+"color" TEXT/);
  });
});
