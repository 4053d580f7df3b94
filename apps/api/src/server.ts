// The API server: parse the environment, connect to PostgreSQL, Redis and S3, listen.
import { ConfigError } from '@crucible/domain';
import { buildApp } from './app';
import { parseApiConfig } from './config';
import { createDeps } from './deps';

export async function startServer(env: Record<string, string | undefined> = process.env) {
  const cfg = parseApiConfig(env);
  const deps = await createDeps(cfg);
  const app = await buildApp(cfg, deps, { logger: true });
  await app.listen({ host: cfg.host, port: cfg.port });
  const close = async () => {
    await app.close();
    await deps.close();
  };
  return { app, cfg, deps, close, url: `http://${cfg.host}:${(app.server.address() as { port: number }).port}` };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  startServer().then(
    (s) => {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void s.close().then(() => process.exit(0)));
    },
    (err: Error) => {
      console.error(err instanceof ConfigError ? err.message : err);
      process.exit(1);
    },
  );
}
