// buildApp: the whole HTTP API as a Fastify instance (no listen), for the server and for tests.
import { randomUUID } from 'node:crypto';
import { CrucibleError, ErrorBody, type KeyScope } from '@crucible/domain';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { type Actor, hasScope } from './auth';
import { completionRoutes } from './completions/routes';
import type { ApiConfig } from './config';
import { registerDashboard } from './dashboard';
import type { Deps } from './deps';
import { evaluationRoutes } from './evaluations/routes';
import { fileRoutes } from './files/routes';
import { installBodyIdleTimeout } from './front-door/body-idle';
import { answerClientError } from './front-door/client-errors';
import { frameworkErrors, installErrorHandling } from './front-door/errors';
import { installJsonBodyParser } from './front-door/json-body';
import { installPartHeaderCheck } from './front-door/part-headers';
import { rateLimited } from './front-door/rate-limit';
import { refuseUnsafeStrings } from './front-door/strings';
import { installUnreadBodyDrain } from './front-door/unread-body';
import { validatorFactory } from './front-door/validators';
import { jobRoutes } from './jobs/routes';
import { modelRoutes } from './models/routes';
import { projectRoutes } from './projects/routes';
import { webhookDocs, webhookRoutes } from './webhooks/routes';

declare module 'fastify' {
  interface FastifyRequest {
    actor: Actor;
  }
  interface FastifyInstance {
    routeTable: RouteEntry[];
  }
  interface FastifyContextConfig {
    /** The scope a key needs for this route; default: read for GET, write otherwise. */
    scope?: KeyScope;
  }
}

export interface RouteEntry {
  method: string;
  url: string;
  scope?: KeyScope;
}

export const API_VERSION = '0.1.0';

export async function buildApp(cfg: ApiConfig, deps: Deps, opts: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    // JSON lines (pino) with the request id on every line of a request
    logger: opts.logger ? { level: cfg.logLevel } : false,
    bodyLimit: 16 * 2 ** 20,
    // long ids reach validation (a 400 naming the field) instead of falling through to a 404
    routerOptions: { maxParamLength: 4096 },
    requestIdHeader: 'x-request-id',
    genReqId: (raw) => {
      const given = raw.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : `req-${randomUUID()}`;
    },
    frameworkErrors,
    // parser-level refusals (431, 400, 408) in Crucible's error shape
    clientErrorHandler: answerClientError,
    // a request (headers and body) must arrive within this; a stalled body is cut by bodyIdleTimeout
    requestTimeout: cfg.requestTimeoutMs,
    schemaController: { compilersFactory: { buildValidator: validatorFactory() } },
  });
  installJsonBodyParser(app);
  installBodyIdleTimeout(app, cfg.bodyIdleTimeoutMs);
  installUnreadBodyDrain(app);
  installPartHeaderCheck(app);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  // the route table (the isolation test walks it: a new route is checked without being listed by hand)
  const routeTable: RouteEntry[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routeTable.push({ method, url: r.url, scope: r.config?.scope });
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
      webhooks: webhookDocs(),
    },
  });
  app.addSchema(ErrorBody);
  await app.register(multipart, { limits: { fileSize: cfg.maxUploadBytes } });

  installErrorHandling(app);
  // deps are read per request (the OpenAPI generator builds the app without any)
  app.addHook('onResponse', async (req, reply) => deps.metrics.observe(req, reply));

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
  // Prometheus text format; served without a key (bind the API to a private interface or filter /metrics at the proxy)
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
    reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
  await registerDashboard(app, cfg.dashboardDir);

  // failed authentications are limited per client address (a flood of made-up keys costs a lookup each)
  const failures = cfg.authFailuresPerMinute;
  const authenticate = async (req: FastifyRequest): Promise<Actor> => {
    // a key known to be valid costs nothing more (no Redis round trip on the hot path)
    const known = deps.keys.cached(req.headers.authorization);
    if (known) return known;
    const who = `authfail:${req.ip}`;
    if (failures > 0) {
      const refused = await deps.rateLimiter.wouldRefuse(who, failures);
      if (refused) throw rateLimited(refused, 'failed authentications from this address');
    }
    try {
      return await deps.keys.authenticate(req.headers.authorization);
    } catch (err) {
      if (failures > 0 && err instanceof CrucibleError && err.code === 'unauthorized') await deps.rateLimiter.take(who, failures);
      throw err;
    }
  };
  await app.register(
    async (v1) => {
      v1.addHook('onRequest', async (req, reply) => {
        req.actor = await authenticate(req);
        req.log = req.log.child({ project_id: req.actor.projectId, key_id: req.actor.keyId });
        const rpm = req.actor.limits.rateLimitRpm;
        if (rpm > 0) {
          const d = await deps.rateLimiter.take(req.actor.keyId, rpm);
          if (d.degraded) req.log.warn('rate limit not checked: Redis unavailable');
          reply.header('x-ratelimit-limit-requests', String(d.limit)).header('x-ratelimit-remaining-requests', String(d.remaining));
          if (!d.allowed) {
            deps.metrics.rateLimited.inc();
            throw rateLimited(d);
          }
        }
        const needed = req.routeOptions.config.scope ?? (req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'write');
        if (!hasScope(req.actor, needed)) {
          throw new CrucibleError('forbidden', `this API key lacks the ${needed} scope (it has ${req.actor.scopes.join(', ')})`, 'authorization');
        }
      });
      v1.addHook('onRequest', (req) => deps.idempotency.checkHeader(req));
      v1.addHook('preValidation', refuseUnsafeStrings);
      v1.addHook('preHandler', (req, reply) => deps.idempotency.preHandler(req, reply));
      v1.addHook('onSend', (req, reply, payload) => deps.idempotency.onSend(req, reply, payload));
      await v1.register(fileRoutes(deps, cfg));
      await v1.register(jobRoutes(deps));
      await v1.register(modelRoutes(deps, cfg));
      await v1.register(completionRoutes(deps, cfg));
      await v1.register(evaluationRoutes(deps));
      await v1.register(projectRoutes(deps, cfg));
      await v1.register(webhookRoutes(deps, cfg));
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
