import { describe, expect, it } from 'vitest';
import { ConfigError, EnvReader, readPlatformConfig } from './config';

describe('platform configuration', () => {
  it('has embedded defaults when nothing is set', () => {
    const r = new EnvReader({});
    const cfg = readPlatformConfig(r);
    r.done();
    expect(cfg.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(cfg.s3.bucket).toBe('crucible');
    expect(cfg.databaseUrl).toMatch(/^postgresql:/);
  });

  it('reports every bad variable at once, by name', () => {
    const r = new EnvReader({ DATABASE_URL: 'mysql://x', REDIS_URL: 'not a url', PORT: 'eighty' });
    readPlatformConfig(r);
    r.int('PORT', 8080, 0, 65535);
    try {
      r.done();
      throw new Error('expected ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const problems = (e as ConfigError).problems.join('\n');
      expect(problems).toMatch(/DATABASE_URL must use postgresql: or postgres:/);
      expect(problems).toMatch(/REDIS_URL is not a URL/);
      expect(problems).toMatch(/PORT must be an integer/);
    }
  });
});
