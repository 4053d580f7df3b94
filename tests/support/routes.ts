// The API's routes as the app registered them (app.routeTable), with what it takes to call each:
// the ids its path parameters name (by the resource kind of its path) and a valid example body.
// A route this file knows nothing about makes the isolation and fuzz tests fail until it is added.
import type { TestPlatform } from './platform';

export interface Route {
  method: string;
  url: string;
}

/** A project's resources, one of each kind. */
export interface Resources {
  projectId: string;
  apiKey: string;
  keyId: string;
  file: string;
  job: string;
  model: string;
  evaluation: string;
  webhook: string;
}

export function v1Routes(p: TestPlatform): Route[] {
  return p.app.routeTable.filter((r) => r.url.startsWith('/v1/')).map((r) => ({ method: r.method, url: r.url }));
}

/** Path parameter values by the resource kind of the path (the part before the first parameter). */
const KINDS: Record<string, (r: Resources) => Record<string, string>> = {
  '/v1/files/': (r) => ({ id: r.file }),
  '/v1/fine_tuning/jobs/': (r) => ({ id: r.job }),
  '/v1/models/': (r) => ({ model: r.model, name: 'config.json' }),
  '/v1/evaluations/': (r) => ({ id: r.evaluation }),
  '/v1/projects/': (r) => ({ id: r.projectId, key_id: r.keyId }),
  '/v1/webhook_endpoints/': (r) => ({ id: r.webhook }),
};

export function hasParams(route: Route): boolean {
  return route.url.includes(':');
}

/** The route's URL with its parameters filled from `r`; throws for a kind of path the table lacks. */
export function fillPath(route: Route, r: Resources, override: Record<string, string> = {}): string {
  if (!hasParams(route)) return route.url;
  const prefix = route.url.slice(0, route.url.indexOf(':'));
  const kind = KINDS[prefix];
  if (!kind) throw new Error(`no id fixture for ${route.method} ${route.url}: add its resource kind to tests/support/routes.ts`);
  const values = { ...kind(r), ...override };
  return route.url.replace(/:(\w+)/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`no value for :${name} in ${route.url}`);
    return encodeURIComponent(v);
  });
}

/** A valid body for each POST route (with `r`'s ids where the body names resources). */
export function exampleBody(route: Route, r: Resources): unknown {
  const bodies: Record<string, unknown> = {
    'POST /v1/files/:id/prepare': { rules: { deduplicate: true } },
    'POST /v1/fine_tuning/jobs': { model: 'gpt-nano', training_file: r.file, hyperparameters: { max_steps: 1 } },
    'POST /v1/fine_tuning/jobs/estimate': { model: 'gpt-nano', training_file: r.file, hyperparameters: { max_steps: 1 } },
    'POST /v1/fine_tuning/jobs/:id/cancel': undefined,
    'POST /v1/fine_tuning/jobs/:id/pause': undefined,
    'POST /v1/fine_tuning/jobs/:id/resume': undefined,
    'POST /v1/completions': { model: r.model, prompt: 'To be', max_tokens: 2 },
    'POST /v1/chat/completions': { model: r.model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 },
    'POST /v1/embeddings': { model: r.model, input: 'hello' },
    'POST /v1/fill_mask': { model: r.model, input: 'to [MASK]' },
    'POST /v1/evaluations': { model: r.model, file: r.file, max_examples: 1 },
    'POST /v1/evaluations/:id/cancel': undefined,
    'POST /v1/projects': { name: 'fuzzed' },
    'POST /v1/projects/:id/api_keys': { name: 'k', scopes: ['read'] },
    'POST /v1/webhook_endpoints': { name: 'w', url: 'http://127.0.0.1:9/hook', event_types: ['fine_tuning.job.failed'] },
    'POST /v1/webhook_endpoints/:id': { name: 'renamed' },
    'POST /v1/webhook_endpoints/:id/rotate_secret': {},
    'POST /v1/webhook_endpoints/:id/test': { event_type: 'fine_tuning.job.failed' },
  };
  const key = `${route.method} ${route.url}`;
  if (key === 'POST /v1/files' || key === 'POST /v1/models') return 'multipart';
  if (!(key in bodies)) throw new Error(`no example body for ${key}: add one to tests/support/routes.ts`);
  return bodies[key];
}

/** Required query parameters of GET routes with path parameters (so that the id lookup is reached). */
export function exampleQuery(route: Route): string {
  const queries: Record<string, string> = { 'GET /v1/files/:id/preview': '?model=gpt-nano' };
  return queries[`${route.method} ${route.url}`] ?? '';
}

/** POST routes without path parameters whose body names another resource: the field that does. */
export const BODY_REFERENCES: Record<string, (r: Resources, own: Resources) => unknown> = {
  'POST /v1/fine_tuning/jobs': (r) => ({ model: 'gpt-nano', training_file: r.file }),
  'POST /v1/fine_tuning/jobs/estimate': (r) => ({ model: 'gpt-nano', training_file: r.file }),
  'POST /v1/completions': (r) => ({ model: r.model, prompt: 'x', max_tokens: 1 }),
  'POST /v1/chat/completions': (r) => ({ model: r.model, messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }),
  'POST /v1/embeddings': (r) => ({ model: r.model, input: 'x' }),
  'POST /v1/fill_mask': (r) => ({ model: r.model, input: 'x' }),
  'POST /v1/evaluations': (r, own) => ({ model: r.model, file: own.file }),
};

/** POST routes without path parameters that name no other resource (they create one from nothing). */
export const NO_REFERENCES = new Set(['POST /v1/files', 'POST /v1/models', 'POST /v1/projects', 'POST /v1/webhook_endpoints']);

/** Query parameters that name resources, per GET route without path parameters. */
export const QUERY_REFERENCES: Record<string, (r: Resources) => Record<string, string>> = {
  'GET /v1/files': (r) => ({ after: r.file }),
  'GET /v1/fine_tuning/jobs': (r) => ({ after: r.job }),
  'GET /v1/models': () => ({}),
  'GET /v1/me': () => ({}), // no reference: the calling key's own project
  'GET /v1/evaluations': (r) => ({ after: r.evaluation }),
  'GET /v1/evaluations/comparison': (r) => ({ file: r.file }),
  'GET /v1/webhook_endpoints': (r) => ({ after: r.webhook }),
};
