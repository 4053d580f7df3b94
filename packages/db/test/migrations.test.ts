// Migrations: the committed ones apply (twice is a no-op) in Prisma's format, the webhook outbox
// made from code is installed with them (and again only when it changes), an upgrade keeps the
// deliveries already written, and the check fails when schema.prisma has a change that no
// migration captures.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { deployMigrations, ensureDatabase, MIGRATIONS_DIR, migrationNames, WEBHOOK_RESOURCE_TABLES } from '../src/index';

const root = resolve(import.meta.dirname, '../../..');
const admin = process.env.TEST_DATABASE_URL ?? 'postgresql://root@localhost/postgres?host=/var/run/postgresql';
const url = new URL(admin);
url.pathname = `/crucible_migrations_${process.pid}`;

const upgraded = new URL(admin);
upgraded.pathname = `/crucible_migrations_up_${process.pid}`;

afterAll(async () => {
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS "crucible_migrations_${process.pid}" WITH (FORCE)`);
  await c.query(`DROP DATABASE IF EXISTS "crucible_migrations_up_${process.pid}" WITH (FORCE)`);
  await c.end();
});

async function query<R extends Record<string, unknown>>(u: URL, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

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
    expect(logs).toEqual([...migrationNames().map((n) => `applied migration ${n}`), 'installed the webhook outbox']);
    await deployMigrations(url.toString(), (m) => logs.push(m));
    expect(logs).toHaveLength(migrationNames().length + 1);
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

  it('installs the webhook outbox on every resource table, and again when the installed one differs', async () => {
    const triggers = await query<{ table: string }>(
      url,
      "SELECT c.relname AS table FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname LIKE '%_webhook_outbox' ORDER BY 1",
    );
    expect(triggers.map((t) => t.table)).toEqual(Object.values(WEBHOOK_RESOURCE_TABLES).sort());
    await query(url, "COMMENT ON FUNCTION crucible_webhook_outbox() IS 'an older version'");
    const logs: string[] = [];
    await deployMigrations(url.toString(), (m) => logs.push(m));
    expect(logs).toEqual(['installed the webhook outbox']);
  });

  it('an upgrade keeps the deliveries written before it, with their resource, and outbox events go on', async () => {
    // a database at the migration before webhook events moved to code, holding a delivery of then
    const before = mkdtempSync(join(tmpdir(), 'crucible-migrations-'));
    const names = migrationNames();
    const moved = names.findIndex((n) => n.endsWith('_webhook_events_from_code'));
    for (const n of names.slice(0, moved)) cpSync(join(MIGRATIONS_DIR, n), join(before, n), { recursive: true });
    await ensureDatabase(upgraded.toString());
    await deployMigrations(upgraded.toString(), () => {}, before);
    await query(upgraded, "INSERT INTO projects (id, name) VALUES ('proj-up', 'up')");
    await query(
      upgraded,
      "INSERT INTO webhook_endpoints (id, project_id, name, url, secret, event_types, updated_at) VALUES ('whep-up', 'proj-up', 'e', 'http://x', 's', '{fine_tuning.job.failed}', now())",
    );
    const payload = { id: 'evt-old', object: 'event', type: 'fine_tuning.job.failed', created_at: 1, data: { id: 'ftjob-old' } };
    await query(
      upgraded,
      "INSERT INTO webhook_deliveries (id, project_id, endpoint_id, event_id, event_type, payload) VALUES ('whdel-old', 'proj-up', 'whep-up', 'evt-old', 'fine_tuning.job.failed', $1)",
      [JSON.stringify(payload)],
    );
    await deployMigrations(upgraded.toString(), () => {});
    expect(await query(upgraded, "SELECT resource_id FROM webhook_deliveries WHERE id = 'whdel-old'")).toEqual([{ resource_id: 'ftjob-old' }]);
    // a job that fails now writes its delivery through the outbox the upgrade installed
    await query(
      upgraded,
      "INSERT INTO jobs (id, project_id, model, method_type, hyperparameters, training_file_id, status, seed, updated_at) VALUES ('ftjob-new', 'proj-up', 'gpt-nano', 'pretrain', '{}', 'file-x', 'running', 1, now())",
    );
    await query(upgraded, "UPDATE jobs SET status = 'failed' WHERE id = 'ftjob-new'");
    const rows = await query<{ event_type: string; event_id: string }>(
      upgraded,
      "SELECT event_type, event_id FROM webhook_deliveries WHERE resource_id = 'ftjob-new'",
    );
    expect(rows).toEqual([{ event_type: 'fine_tuning.job.failed', event_id: expect.stringMatching(/^evt-[0-9a-f]{24}$/) }]);
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
