import { describe, expect, it } from 'vitest';
import { CrucibleError } from './errors';
import { guard, isTransientError, retryTransient, ServiceUnavailableError } from './unavailable';

const sysErr = (code: string) => Object.assign(new Error(`connect ${code} 10.0.0.1:5432`), { code });

describe('transient errors', () => {
  it.each([
    ['ECONNREFUSED', sysErr('ECONNREFUSED')],
    ['a wrapped ECONNRESET', new Error('query failed', { cause: sysErr('ECONNRESET') })],
    ['PostgreSQL shutting down', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })],
    ['pg pool timeout', new Error('timeout exceeded when trying to connect')],
    ['Redis offline', new Error("Stream isn't writeable and enableOfflineQueue options is false")],
    ['S3 503', Object.assign(new Error('Service Unavailable'), { $metadata: { httpStatusCode: 503 } })],
    ['an AggregateError of refusals', new AggregateError([sysErr('ECONNREFUSED'), sysErr('ECONNREFUSED')])],
  ])('%s is transient', (_name, err) => expect(isTransientError(err)).toBe(true));

  it.each([
    ['a request error', new CrucibleError('invalid_file', 'line 3 is not JSON', 'line 3')],
    ['a bug', new TypeError('x is not a function')],
    ['S3 404', Object.assign(new Error('NoSuchKey'), { $metadata: { httpStatusCode: 404 } })],
    ['a unique violation', Object.assign(new Error('duplicate key'), { code: '23505' })],
  ])('%s is not', (_name, err) => expect(isTransientError(err)).toBe(false));

  it('guard names the dependency and hides the host', async () => {
    const err = await guard('database', () => Promise.reject(sysErr('ECONNREFUSED'))).catch((e) => e);
    expect(err).toBeInstanceOf(ServiceUnavailableError);
    expect(err).toMatchObject({ code: 'service_unavailable', status: 503, dependency: 'database' });
    expect(err.message).not.toMatch(/10\.0\.0\.1|5432/);
    const bad = new TypeError('bug');
    await expect(guard('database', () => Promise.reject(bad))).rejects.toBe(bad);
  });

  it('retries transient errors until they stop, and never a permanent one', async () => {
    let calls = 0;
    const v = await retryTransient(
      async () => {
        calls++;
        if (calls < 4) throw sysErr('ECONNREFUSED');
        return 'ok';
      },
      { deadlineMs: 5000, initialDelayMs: 1 },
    );
    expect([v, calls]).toEqual(['ok', 4]);
    calls = 0;
    await expect(
      retryTransient(
        async () => {
          calls++;
          throw new TypeError('bug');
        },
        { deadlineMs: 5000, initialDelayMs: 1 },
      ),
    ).rejects.toThrow('bug');
    expect(calls).toBe(1);
    await expect(retryTransient(() => Promise.reject(sysErr('ETIMEDOUT')), { deadlineMs: 30, initialDelayMs: 5 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
  });
});
