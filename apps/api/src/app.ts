// buildApp: the whole HTTP API as a Fastify instance (no listen), for the server and for tests.
import { CrucibleError, ErrorBody, isTransientError, ServiceUnavailableError } from '@crucible/domain';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { type Actor, authenticate } from './auth';
import { completionRoutes } from './completions/routes';
import type { ApiConfig } from './config';
import { registerDashboard } from './dashboard';
import type { Deps } from './deps';
import { evaluationRoutes } from './evaluations/routes';
import { fileRoutes } from './files/routes';
import { jobRoutes } from './jobs/routes';
import { modelRoutes } from './models/routes';

declare module 'fastify' {
  interface FastifyRequest {
    actor: Actor;
  }
}

export const API_VERSION = '0.1.0';

export async function buildApp(cfg: ApiConfig, deps: Deps, opts: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ? { level: cfg.logLevel } : false,
    bodyLimit: 16 * 2 ** 20,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: false, allErrors: false } },
  });
  // Every route documents the error body for its 4xx and 5xx answers.
  app.addHook('onRoute', (route) => {
    if (!route.schema || (route.schema as { hide?: boolean }).hide) return;
    const response = (route.schema.response ?? {}) as Record<string, unknown>;
    route.schema.response = { ...response, '4xx': { $ref: 'Error#' }, '5xx': { $ref: 'Error#' } };
  });
  await app.register(swagger, {
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Crucible API',
        version: API_VERSION,
        description: 'Self-hosted training-as-a-service. Shaped like OpenAI’s files, fine-tuning, models and completions APIs.',
      },
      servers: [{ url: '/v1' }],
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
    },
  });
  app.addSchema(ErrorBody);
  await app.register(multipart, { limits: { fileSize: cfg.maxUploadBytes } });

  app.setErrorHandler((err: FastifyError | CrucibleError, req, reply) => {
    if (err instanceof ServiceUnavailableError || (!(err instanceof CrucibleError) && isTransientError(err))) {
      const e = err instanceof ServiceUnavailableError ? err : new ServiceUnavailableError(dependencyOf(err), err);
      req.log.warn({ dependency: e.dependency, cause: (err as Error).message }, 'dependency unavailable');
      return reply.status(503).header('retry-after', String(e.retryAfter)).send(e.toJSON());
    }
    if (err instanceof CrucibleError) return reply.status(err.status).send(err.toJSON());
    if ((err as FastifyError).validation) {
      const v = (err as FastifyError).validation?.[0];
      const path = `${(v?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.')}`;
      const missing = (v?.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {};
      const param = [path, missing.missingProperty ?? missing.additionalProperty].filter(Boolean).join('.') || null;
      const where = (err as FastifyError).validationContext ?? 'body';
      const message = missing.additionalProperty ? `unknown field ${param}` : `${param ?? where} ${v?.message ?? 'is invalid'}`;
      const code = param?.includes('hyperparameters') ? 'invalid_hyperparameters' : 'invalid_request';
      return reply.status(400).send(new CrucibleError(code, message, param).toJSON());
    }
    const status = (err as FastifyError).statusCode ?? 500;
    if (status === 413 || (err as FastifyError).code === 'FST_REQ_FILE_TOO_LARGE') {
      return reply.status(413).send(new CrucibleError('file_too_large', err.message, 'file').toJSON());
    }
    if (status < 500) return reply.status(status).send(new CrucibleError('invalid_request', err.message, null).toJSON());
    req.log.error(err);
    return reply.status(500).send(new CrucibleError('internal_error', 'internal error', null).toJSON());
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send(new CrucibleError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`, null).toJSON()),
  );

  // liveness: the process answers. Readiness: PostgreSQL, Redis and S3 all answer.
  app.get('/health', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/ready', { schema: { hide: true } }, async (_req, reply) => {
    const checks = await readiness(deps);
    const down = Object.entries(checks).filter(([, ok]) => ok !== 'ok');
    if (down.length === 0) return { status: 'ready', checks };
    const names = down.map(([name]) => name).join(', ');
    return reply
      .status(503)
      .header('retry-after', '5')
      .send({ ...new CrucibleError('service_unavailable', `not ready: ${names} unavailable`, null).toJSON(), checks });
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await registerDashboard(app, cfg.dashboardDir);

  await app.register(
    async (v1) => {
      v1.addHook('onRequest', async (req) => {
        req.actor = await authenticate(deps.store, req.headers.authorization);
      });
      await v1.register(fileRoutes(deps, cfg));
      await v1.register(jobRoutes(deps));
      await v1.register(modelRoutes(deps, cfg));
      await v1.register(completionRoutes(deps, cfg));
      await v1.register(evaluationRoutes(deps));
    },
    { prefix: '/v1' },
  );
  return app;
}

type Check = 'ok' | 'unavailable';

/** Each dependency answers within two seconds, or counts as unavailable. */
async function readiness(deps: Deps): Promise<{ database: Check; queue: Check; storage: Check }> {
  const within = async (p: Promise<unknown>): Promise<Check> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), 2000);
    });
    try {
      await Promise.race([p, timeout]);
      return 'ok';
    } catch {
      return 'unavailable';
    } finally {
      clearTimeout(timer);
    }
  };
  const [database, queue, storage] = await Promise.all([within(deps.store.ping()), within(deps.redis.ping()), within(deps.storage.ping())]);
  return { database, queue, storage };
}

/** Which dependency a raw connection error came from, when a service did not say. */
function dependencyOf(err: unknown): 'database' | 'queue' | 'storage' {
  const text = `${(err as Error).name} ${(err as Error).message}`;
  if (/redis|stream isn't writeable|max retries per request|Connection is closed/i.test(text)) return 'queue';
  if (/S3|bucket|\$metadata/i.test(text)) return 'storage';
  return 'database';
}
