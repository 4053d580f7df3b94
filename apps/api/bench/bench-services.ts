// What the API benchmarks stand on: a local S3 server in its own process (so its memory is not
// the API's) on a fresh folder, and a PostgreSQL database with the migrations applied; `stop`
// removes both. Needs the machine's PostgreSQL (local socket).
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployMigrations, ensureDatabase } from '@crucible/db';

export interface BenchServices {
  s3Endpoint: string;
  databaseUrl: string;
  stop(): void;
}

export async function startBenchServices(name: string): Promise<BenchServices> {
  const s3Dir = join(tmpdir(), `crucible-bench-${name}-s3`);
  spawnSync('rm', ['-rf', s3Dir]);
  const s3 = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const { startLocalS3 } = await import('@crucible/storage'); const s = await startLocalS3(${JSON.stringify(s3Dir)}, 0); console.log(s.endpoint);`,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const s3Endpoint: string = await new Promise((r) => s3.stdout.on('data', (d) => r(String(d).trim())));
  const database = `crucible_bench_${name}`;
  const databaseUrl = `postgresql://root@localhost/${database}?host=/var/run/postgresql`;
  await ensureDatabase(databaseUrl);
  await deployMigrations(databaseUrl, () => {});
  return {
    s3Endpoint,
    databaseUrl,
    stop() {
      s3.kill();
      spawnSync('rm', ['-rf', s3Dir]);
      spawnSync('psql', ['-h', '/var/run/postgresql', '-d', 'postgres', '-c', `DROP DATABASE ${database} WITH (FORCE)`]);
    },
  };
}
