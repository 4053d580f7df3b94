// The client's first minutes: a missing key or base URL fails in the constructor, a server that
// is not there is a CrucibleConnectionError, and a 404 from a base URL without /v1 says so.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Crucible } from './client';
import { CrucibleApiError, CrucibleConfigError, CrucibleConnectionError } from './errors';

let server: Server;
let url = '';

beforeAll(async () => {
  // answers 404 in Fastify's shape for every route, as the API does for a path it does not serve
  server = createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'not_found', message: `Route GET:${req.url} not found`, param: null, type: 'invalid_request_error' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('a Crucible client', () => {
  it('refuses a missing API key or base URL in its constructor, saying what to pass', () => {
    expect(() => new Crucible({ baseUrl: `${url}/v1`, apiKey: undefined as unknown as string })).toThrow(CrucibleConfigError);
    expect(() => new Crucible({ baseUrl: `${url}/v1`, apiKey: '' })).toThrow(/apiKey is missing/);
    expect(() => new Crucible({ baseUrl: '127.0.0.1:8080', apiKey: 'k' })).toThrow(/http\(s\) address with \/v1/);
  });

  it('raises a CrucibleConnectionError naming the address when nothing listens there', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const c = new Crucible({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: 'k' });
    const err = await c.retrieveJob('ftjob-x').catch((e) => e);
    expect(err).toBeInstanceOf(CrucibleConnectionError);
    expect(err.message).toMatch(new RegExp(`cannot reach the Crucible API at http://127.0.0.1:${port}/v1: .*ECONNREFUSED`));
    // the typed client too
    await expect(c.api.GET('/models')).rejects.toBeInstanceOf(CrucibleConnectionError);
  });

  it('adds a hint to a 404 when the base URL lacks /v1, and only then', async () => {
    const without = await new Crucible({ baseUrl: url, apiKey: 'k' }).retrieveJob('ftjob-x').catch((e) => e);
    expect(without).toBeInstanceOf(CrucibleApiError);
    expect(without.status).toBe(404);
    expect(without.message).toMatch(/has no \/v1: Crucible's API is under \/v1, e\.g\. http:\/\/127\.0\.0\.1:\d+\/v1/);
    const withV1 = await new Crucible({ baseUrl: `${url}/v1`, apiKey: 'k' }).retrieveJob('ftjob-x').catch((e) => e);
    expect(withV1.status).toBe(404);
    expect(withV1.message).not.toMatch(/no \/v1/);
  });
});
