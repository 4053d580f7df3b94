// The database URL: DATABASE_URL, else the local PostgreSQL socket's `crucible` database.
export const DEFAULT_DATABASE_URL = 'postgresql://root@localhost/crucible?host=/var/run/postgresql';

export function databaseUrl(env: Record<string, string | undefined>): string {
  return env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

/** Creates the URL's database when it does not exist (connecting to the `postgres` database). */
export async function ensureDatabase(url: string): Promise<void> {
  const { default: pg } = await import('pg');
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.slice(1));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`database name ${JSON.stringify(name)}: use letters, digits and _`);
  u.pathname = '/postgres';
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  try {
    const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (r.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
}
