import type { Tokenizer, Transformer } from '@crucible/trainer';
import { describe, expect, it } from 'vitest';
import { type CacheItem, type Loaded, ModelCache, ModelCapacityError } from './model-cache';

/** Items whose models are stand-ins that report their bytes and record their loads and disposals. */
function fixture() {
  const loads: string[] = [];
  const disposed: string[] = [];
  const model = (key: string, bytes: number) => ({ ownBytes: () => bytes, dispose: () => disposed.push(key) }) as unknown as Transformer;
  const item = (key: string, bytes: number, o: { base?: CacheItem; estimate?: number; fail?: boolean } = {}): CacheItem => ({
    key,
    kind: o.base ? 'adapter' : 'model',
    estimateBytes: o.estimate ?? bytes,
    base: o.base,
    load: async (base?: Loaded) => {
      loads.push(base ? `${key} on ${base.model === undefined ? '?' : 'base'}` : key);
      if (o.fail) throw new Error(`${key} does not load`);
      return { model: model(key, bytes), tokenizer: {} as Tokenizer };
    },
  });
  return { loads, disposed, item };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('ModelCache: a memory budget, least recently used first', () => {
  it('evicts the least recently used model when the next does not fit, and disposes it', async () => {
    const { loads, disposed, item } = fixture();
    const cache = new ModelCache(100);
    const [a, b, c] = [item('a', 40), item('b', 40), item('c', 40)];
    (await cache.acquire(a)).release();
    (await cache.acquire(b)).release();
    (await cache.acquire(a)).release(); // a is now more recent than b
    (await cache.acquire(c)).release();
    await settle();
    expect(disposed).toEqual(['b']);
    expect(cache.list().map((e) => e.key)).toEqual(['a', 'c']);
    expect(cache.bytes).toBe(80);
    (await cache.acquire(a)).release();
    expect(loads).toEqual(['a', 'b', 'c']); // a hit loads nothing
  });

  it('never evicts a model in use: a request that cannot fit gets ModelCapacityError until one is released', async () => {
    const { disposed, item } = fixture();
    const cache = new ModelCache(100);
    const a = await cache.acquire(item('a', 50));
    const b = await cache.acquire(item('b', 50));
    const err = await cache.acquire(item('c', 30)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelCapacityError);
    expect((err as ModelCapacityError).message).toMatch(/MODEL_CACHE_BYTES/);
    expect((err as ModelCapacityError).retryAfter).toBeGreaterThan(0);
    expect(cache.list().map((e) => e.key)).toEqual(['a', 'b']);
    a.release();
    a.release(); // twice is once
    const c = await cache.acquire(item('c', 30));
    await settle();
    expect(disposed).toEqual(['a']);
    expect(cache.list().map((e) => [e.key, e.users])).toEqual([
      ['b', 1],
      ['c', 1],
    ]);
    b.release();
    c.release();
  });

  it('refuses a model larger than the whole budget without loading it', async () => {
    const { loads, item } = fixture();
    const cache = new ModelCache(100);
    await expect(cache.acquire(item('huge', 101))).rejects.toThrow(/needs about 1 MB.*holds 1 MB/);
    expect(loads).toEqual([]);
    expect(cache.bytes).toBe(0);
  });

  it("counts a loaded model's own bytes in place of the estimate", async () => {
    const { item } = fixture();
    const cache = new ModelCache(100);
    (await cache.acquire(item('a', 30, { estimate: 90 }))).release();
    expect(cache.bytes).toBe(30);
    (await cache.acquire(item('b', 60))).release(); // fits beside a's 30, not beside its estimate
    expect(cache.list().map((e) => e.key)).toEqual(['a', 'b']);
  });

  it('forgets a model that failed to load (the next request loads it again)', async () => {
    const { loads, item } = fixture();
    const cache = new ModelCache(100);
    await expect(cache.acquire(item('a', 10, { fail: true }))).rejects.toThrow(/does not load/);
    expect(cache.bytes).toBe(0);
    (await cache.acquire(item('a', 10))).release();
    expect(loads).toEqual(['a', 'a']);
  });

  it('loads adapters on one shared base: each costs its own bytes, and the base goes only after them', async () => {
    const { loads, disposed, item } = fixture();
    const cache = new ModelCache(100);
    const base = item('base', 60);
    const adapters = ['x', 'y', 'z'].map((k) => item(k, 5, { base }));
    const leases = await Promise.all(adapters.map((a) => cache.acquire(a)));
    expect(loads).toEqual(['base', 'x on base', 'y on base', 'z on base']);
    expect(cache.bytes).toBe(75);
    expect(cache.list().find((e) => e.key === 'base')?.users).toBe(3); // each request holds the base too
    for (const l of leases) l.release();
    expect(cache.list().map((e) => [e.key, e.users])).toEqual([
      ['base', 0],
      ['x', 0],
      ['y', 0],
      ['z', 0],
    ]);
    // a 45-byte model: the adapters go first (least recently used), then the base they left
    (await cache.acquire(item('other', 45))).release();
    await settle();
    expect(disposed).toEqual(['x', 'y', 'z', 'base']);
    expect(cache.list().map((e) => e.key)).toEqual(['other']);
  });

  it("keeps an adapter's base while the adapter is loaded, even when the base is the least recently used", async () => {
    const { disposed, item } = fixture();
    const cache = new ModelCache(100);
    const base = item('base', 50);
    (await cache.acquire(item('x', 5, { base }))).release();
    (await cache.acquire(item('b', 30))).release();
    // 20 more: b and x may go, the base may not (x is on it); x is the least recently used
    (await cache.acquire(item('c', 20))).release();
    await settle();
    expect(disposed).toEqual(['x']);
    expect(cache.list().map((e) => e.key)).toEqual(['base', 'b', 'c']);
  });

  it('clear() disposes every model', async () => {
    const { disposed, item } = fixture();
    const cache = new ModelCache(100);
    const base = item('base', 50);
    (await cache.acquire(item('x', 5, { base }))).release();
    cache.clear();
    await settle();
    expect(disposed.sort()).toEqual(['base', 'x']);
    expect(cache.bytes).toBe(0);
  });
});
