// Prisma CLI configuration (Prisma 7): schema, migrations folder and the database URL.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://root@localhost/crucible?host=/var/run/postgresql' },
});
