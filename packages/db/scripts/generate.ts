// `prisma generate` that works offline: the Prisma CLI downloads its native schema engine before
// any command unless PRISMA_SCHEMA_ENGINE_BINARY names an existing file; generating the client
// never runs that engine, so any existing file will do.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../../..');
const env = { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: '1' };
const r = spawnSync('npx', ['prisma', 'generate'], { cwd: root, env, stdio: 'inherit' });
process.exit(r.status ?? 1);
