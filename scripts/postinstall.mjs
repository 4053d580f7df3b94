// Nothing heavy here: generating the Prisma client is done by `npm run db:generate` (see .ci/run).
