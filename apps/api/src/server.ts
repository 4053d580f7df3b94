// The API server: parse the environment, connect to PostgreSQL, Redis and S3, listen.
import { ConfigError } from '@crucible/domain';
import { buildApp } from './app';
import { parseApiConfig } from './config';
import { createDeps } from './deps';
import { redispatchEvaluations } from './evaluations/service';
import { sweepStaleUploads } from './files/service';

export async function startServer(env: Record<string, string | undefined> = process.env) {
  const cfg = parseApiConfig(env);
  const deps = await createDeps(cfg);
  const app = await buildApp(cfg, deps, { logger: true });
  await app.listen({ host: cfg.host, port: cfg.port });
  // The queue is rebuilt from PostgreSQL now and periodically; uploads a crash cut short are removed.
  deps.reconciler.start();
  const sweep = () =>
    sweepStaleUploads(deps.store, deps.storage, new Date(Date.now() - cfg.uploadStaleMs)).then(
      (n) => n > 0 && app.log.info(`removed ${n} unfinished upload(s)`),
      (err: Error) => app.log.warn(`upload sweep: ${err.message}`),
    );
  void sweep();
  // files left pending by a process that died are validated (or prepared) again
  deps.processor.start(cfg.filePendingRetryMs);
  // webhook deliveries written by the database when jobs and evaluations end
  deps.webhooks.start();
  const sweeper = setInterval(sweep, Math.max(1000, Math.min(cfg.uploadStaleMs, 600_000)));
  sweeper.unref();
  const evaluations = setInterval(
    () =>
      void redispatchEvaluations(deps, new Date(Date.now() - cfg.jobs.queuedGraceMs)).then(
        (n) => n > 0 && app.log.info(`queued ${n} evaluation(s) again`),
        (err: Error) => app.log.warn(`evaluation sweep: ${err.message}`),
      ),
    cfg.jobs.reconcileIntervalMs,
  );
  evaluations.unref();
  const close = async () => {
    clearInterval(sweeper);
    clearInterval(evaluations);
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
