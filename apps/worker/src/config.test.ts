import { EnvReader } from '@crucible/domain';
import { describe, expect, it } from 'vitest';
import { byteSize, machineMemory, parseWorkerConfig } from './config';

const BASE = { DATABASE_URL: 'postgresql://localhost/x', S3_ACCESS_KEY_ID: 'a', S3_SECRET_ACCESS_KEY: 'b' };

describe('MODEL_CACHE_BYTES', () => {
  it('reads bytes, or a number with a decimal or binary unit', () => {
    const read = (v: string) => byteSize(new EnvReader({ X: v }), 'X', -1);
    expect(read('536870912')).toBe(536_870_912);
    expect(read('8GiB')).toBe(8 * 2 ** 30);
    expect(read('1.5 gb')).toBe(1_500_000_000);
    expect(read('512MiB')).toBe(512 * 2 ** 20);
    expect(read('64kb')).toBe(64_000);
    expect(byteSize(new EnvReader({}), 'X', 7)).toBe(7);
  });

  it('refuses a size it cannot read, naming the variable', () => {
    for (const bad of ['lots', '8 parsecs', '-1', '0', '1e3GiB']) {
      const r = new EnvReader({ X: bad });
      byteSize(r, 'X', 1);
      expect(r.problems.join(), bad).toMatch(/X must be a size in bytes, e\.g\. 8GiB/);
    }
  });

  it("defaults to 40% of the machine's memory, and MODEL_CACHE_SIZE (a count) is refused with what replaced it", () => {
    expect(parseWorkerConfig(BASE).modelCacheBytes).toBe(Math.floor(0.4 * machineMemory()));
    expect(parseWorkerConfig({ ...BASE, MODEL_CACHE_BYTES: '2GiB' }).modelCacheBytes).toBe(2 * 2 ** 30);
    expect(() => parseWorkerConfig({ ...BASE, MODEL_CACHE_SIZE: '4' })).toThrow(/MODEL_CACHE_SIZE .* was replaced by MODEL_CACHE_BYTES/);
  });
});
