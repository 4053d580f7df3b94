// The dashboard's static route: it serves the built files (and index.html for client-side routes)
// without logging an error, and answers 404 with Crucible's error shape when a file is missing.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDashboard } from './dashboard';
import { installErrorHandling } from './front-door/errors';

describe('the dashboard route', () => {
  const logs: Array<{ level: number; msg?: string }> = [];
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => logs.push(JSON.parse(line)) } } });
  const dir = mkdtempSync(join(tmpdir(), 'crucible-dashboard-'));

  beforeAll(async () => {
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Crucible</title>');
    writeFileSync(join(dir, 'assets', 'app-1234.js'), 'console.log(1)');
    installErrorHandling(app);
    await app.register(swagger, { openapi: { info: { title: 'test', version: '1' } } });
    await registerDashboard(app, dir);
  });
  afterAll(() => app.close());

  it.each([
    ['/dashboard/', 'text/html; charset=utf-8'],
    ['/dashboard/index.html', 'text/html; charset=utf-8'],
    ['/dashboard/jobs/ftjob-1', 'text/html; charset=utf-8'],
    ['/dashboard/assets/app-1234.js', 'text/javascript; charset=utf-8'],
  ])('serves %s with no error logged', async (url, type) => {
    logs.length = 0;
    const r = await app.inject({ url });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe(type);
    await new Promise((resolve) => setTimeout(resolve, 50)); // an error after the answer is logged once the stream ends
    expect(logs.filter((l) => l.level >= 40)).toEqual([]);
  });

  it('answers 404 not_found for a missing file, and refuses paths out of its folder', async () => {
    const missing = await app.inject({ url: '/dashboard/assets/gone.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toMatchObject({ code: 'not_found', message: 'no dashboard file assets/gone.js' });
    const out = await app.inject({ url: '/dashboard/..%2F..%2Fetc%2Fpasswd' });
    expect(out.statusCode).toBe(404);
  });
});
