// Every string a request carries (path parameters, query, JSON body, object keys included) is
// checked for what PostgreSQL and HTTP headers cannot hold, before any handler sees it.
import { CrucibleError, findUnsafeString } from '@crucible/domain';
import type { FastifyRequest } from 'fastify';

export async function refuseUnsafeStrings(req: FastifyRequest): Promise<void> {
  for (const part of [req.params, req.query, req.isMultipart() ? undefined : req.body]) {
    const hit = findUnsafeString(part);
    if (hit) throw new CrucibleError('invalid_request', `${hit.path || 'the request'} ${hit.problem}`, hit.path || null);
  }
}
