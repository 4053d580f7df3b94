// The web dashboard (apps/dashboard, built to static files) at /dashboard/, and the interactive API
// reference at /docs (Swagger UI over the same OpenAPI document as /openapi.json).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { CrucibleError } from '@crucible/domain';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifyReply } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

// The dashboard talks to this origin only; React's style attributes need 'unsafe-inline' for styles.
const CSP =
  "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export async function registerDashboard(app: FastifyInstance, dir: string): Promise<void> {
  const root = normalize(dir);
  // Sends the file when there is one. Answers whether it did: not the reply itself, which is a
  // thenable (awaiting it waits for the response to finish and gives undefined).
  const send = async (reply: FastifyReply, rel: string): Promise<boolean> => {
    const path = normalize(join(root, rel));
    if (path !== root && !path.startsWith(root + sep)) throw new CrucibleError('not_found', 'no such dashboard file', null);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) return false;
    const immutable = rel.startsWith('assets/'); // content-hashed names
    reply
      .header('content-type', TYPES[extname(path)] ?? 'application/octet-stream')
      .header('content-length', info.size)
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(createReadStream(path));
    return true;
  };
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/dashboard/'));
  app.get('/dashboard', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/dashboard/'));
  app.get<{ Params: { '*': string } }>('/dashboard/*', { schema: { hide: true } }, async (req, reply) => {
    const rel = decodeURIComponent(req.params['*'] || 'index.html');
    // client-side routes (no extension) get index.html
    if ((await send(reply, rel)) || (extname(rel) === '' && (await send(reply, 'index.html')))) return reply;
    throw new CrucibleError(
      'not_found',
      rel === 'index.html' ? `the dashboard is not built (no ${join(root, 'index.html')}): run npm run build` : `no dashboard file ${rel}`,
      null,
    );
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true, persistAuthorization: false } });
}
