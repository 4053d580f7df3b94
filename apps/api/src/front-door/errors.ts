// Every error leaves in Crucible's shape { error: { code, message, param, type } }: Crucible's own,
// schema validation, Fastify's and the multipart parser's (whose codes are mapped below), a
// dependency that is down (503 with Retry-After), and anything else (500, no details).
import { CrucibleError, isTransientError, RetryLaterError, ServiceUnavailableError } from '@crucible/domain';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Fastify and @fastify/multipart codes, with what Crucible answers instead. */
const FRAMEWORK_CODES: Record<string, { status: number; code: 'invalid_request' | 'file_too_large' | 'not_found'; message?: string; param?: string }> = {
  FST_ERR_BAD_URL: { status: 400, code: 'invalid_request', message: 'the URL is malformed (bad percent-encoding)', param: 'url' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 400,
    code: 'invalid_request',
    message: 'unsupported Content-Type: send application/json (or multipart/form-data for uploads)',
    param: 'content-type',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'invalid_request', message: 'Content-Length does not match the body', param: 'content-length' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_request', message: 'the body is empty: send a JSON object', param: 'body' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_request', message: 'the body is not valid JSON', param: 'body' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'invalid_request', message: 'the request body is larger than 16 MiB', param: 'body' },
  FST_ERR_CTP_INVALID_TYPE: { status: 400, code: 'invalid_request', message: 'the Content-Type header is invalid', param: 'content-type' },
  FST_INVALID_MULTIPART_CONTENT_TYPE: { status: 400, code: 'invalid_request', message: 'send the file as multipart/form-data', param: 'file' },
  FST_FILES_LIMIT: { status: 400, code: 'invalid_request', message: 'send exactly one file part', param: 'file' },
  FST_FIELDS_LIMIT: { status: 400, code: 'invalid_request', message: 'too many form fields', param: 'purpose' },
  FST_PARTS_LIMIT: { status: 400, code: 'invalid_request', message: 'too many multipart parts', param: 'file' },
  FST_INVALID_JSON_FIELD_ERROR: { status: 400, code: 'invalid_request', message: 'a form field declared as JSON is not valid JSON', param: 'purpose' },
  FST_MP_PREMATURE_CLOSE: { status: 400, code: 'invalid_request', message: 'the upload was cut short before the multipart body ended', param: 'file' },
  FST_PROTO_VIOLATION: { status: 400, code: 'invalid_request', message: 'a form field name is not allowed', param: 'file' },
  FST_REQ_FILE_TOO_LARGE: { status: 413, code: 'file_too_large', param: 'file' },
};

/** What the multipart parser (busboy) throws for a malformed body: plain Errors without a code. */
const MULTIPART_PARSER_ERRORS =
  /^(Unexpected end of (multipart data|form|file)|.* terminated early due to unexpected end of multipart data|Multipart: Boundary not found|Boundary required|Malformed part header|Missing Content-Type|Unsupported content type)/;

function send(reply: FastifyReply, status: number, err: CrucibleError): FastifyReply {
  return reply.status(status).send(err.toJSON());
}

export function crucibleErrorFor(err: FastifyError): { status: number; error: CrucibleError } | null {
  const mapped = err.code ? FRAMEWORK_CODES[err.code] : undefined;
  if (mapped) return { status: mapped.status, error: new CrucibleError(mapped.code, mapped.message ?? err.message, mapped.param ?? null) };
  return null;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | CrucibleError, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof ServiceUnavailableError || (!(err instanceof CrucibleError) && isTransientError(err))) {
      const e = err instanceof ServiceUnavailableError ? err : new ServiceUnavailableError(dependencyOf(err), err);
      req.log.warn({ dependency: e.dependency, cause: (err as Error).message }, 'dependency unavailable');
      return reply.status(503).header('retry-after', String(e.retryAfter)).send(e.toJSON());
    }
    // the client closed the connection before its answer (nobody reads this one; nginx's 499)
    if ((err as Error).name === 'ClientGoneError') return send(reply, 499, new CrucibleError('invalid_request', 'the client closed the connection', null));
    if (err instanceof RetryLaterError) return reply.status(err.status).header('retry-after', String(err.retryAfter)).send(err.toJSON());
    if (err instanceof CrucibleError) return reply.status(err.status).send(err.toJSON());
    if ((err as FastifyError).validation) {
      const { param, message } = describeValidation((err as FastifyError).validation ?? [], (err as FastifyError).validationContext ?? 'body');
      const code = param?.includes('hyperparameters') ? 'invalid_hyperparameters' : 'invalid_request';
      return send(reply, 400, new CrucibleError(code, message, param));
    }
    const mapped = crucibleErrorFor(err as FastifyError);
    if (mapped) return send(reply, mapped.status, mapped.error);
    if (req.isMultipart() && MULTIPART_PARSER_ERRORS.test(err.message)) {
      return send(reply, 400, new CrucibleError('invalid_request', `the multipart body is malformed: ${err.message}`, 'file'));
    }
    const status = (err as FastifyError).statusCode ?? 500;
    if (status === 413) return send(reply, 413, new CrucibleError('file_too_large', err.message, 'file'));
    if (status >= 400 && status < 500) return send(reply, status, new CrucibleError('invalid_request', err.message, null));
    req.log.error(err);
    return send(reply, 500, new CrucibleError('internal_error', 'internal error', null));
  });
  app.setNotFoundHandler((req, reply) =>
    send(reply, 404, new CrucibleError('not_found', `no route ${req.method} ${req.url.split('?')[0]?.slice(0, 200)}`, null)),
  );
}

type ValidationIssue = NonNullable<FastifyError['validation']>[number];

/**
 * The field and rule of a schema validation failure. Where the body may take one of several shapes
 * (a job's `method`: pretrain, mlm or supervised), the validator reports a failure for each shape it
 * tried; the deepest one is the problem in the shape the request meant (a `supervised` job's
 * `max_step` typo fails inside `method.supervised.hyperparameters`, while the `pretrain` shape only
 * says that `supervised` is not one of its fields).
 */
export function describeValidation(issues: ValidationIssue[], where: string): { param: string | null; message: string } {
  const described = issues
    .filter((v) => v.keyword !== 'anyOf' && v.keyword !== 'oneOf')
    .map((v) => {
      const path = (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
      const extra = (v.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {};
      const parts = [path, extra.missingProperty ?? extra.additionalProperty].filter(Boolean);
      const param = parts.join('.') || null;
      const depth = param ? param.split('.').length : 0;
      const message = extra.additionalProperty ? `unknown field ${param}` : `${param ?? where} ${v.message ?? 'is invalid'}`;
      return { param, message, depth };
    });
  const best = described.reduce<(typeof described)[number] | undefined>((a, b) => (!a || b.depth > a.depth ? b : a), undefined);
  return best ?? { param: null, message: `${where} is invalid` };
}

/** Fastify's errors raised before routing (a malformed URL, ...), in Crucible's shape. */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const mapped = crucibleErrorFor(err) ?? { status: 400, error: new CrucibleError('invalid_request', 'the request could not be routed', null) };
  void send(reply, mapped.status, mapped.error);
}

/** Which dependency a raw connection error came from, when a service did not say. */
function dependencyOf(err: unknown): 'database' | 'queue' | 'storage' {
  const text = `${(err as Error).name} ${(err as Error).message}`;
  if (/redis|stream isn't writeable|max retries per request|Connection is closed/i.test(text)) return 'queue';
  if (/S3|bucket|\$metadata/i.test(text)) return 'storage';
  return 'database';
}
