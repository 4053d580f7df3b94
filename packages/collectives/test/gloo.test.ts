// Gloo between real processes on this machine, with the rendezvous in the local Redis: the
// collectives' results, and the failures that must be clear and quick (never a hang).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const { gloo, glooMissing } = createRequire(import.meta.url)('@crucible/collectives') as typeof import('@crucible/collectives');
const run = promisify(execFile);
const RANK = join(__dirname, 'rank.cjs');

interface Report {
  sum?: number[];
  min?: number[];
  max?: number[];
  root?: number[];
  big?: number[];
  queued?: number[];
  after?: number;
  error?: string;
  stage?: string;
  ms: number;
}

async function rank(r: number, size: number, host: string, prefix: string, ...extra: string[]): Promise<Report | null> {
  const out = await run(process.execPath, [RANK, String(r), String(size), host, prefix, ...extra], { timeout: 60_000 }).catch((e: { stdout?: string }) => e);
  const line = (out.stdout ?? '').trim();
  return line ? (JSON.parse(line) as Report) : null; // killed before it printed
}

describe.skipIf(!gloo)(`Gloo collectives${glooMissing ? ` (skipped: ${glooMissing})` : ''}`, () => {
  it('allreduces (sum, min, max; queued ones in order on the group thread), broadcasts and passes a barrier between three processes', async () => {
    const prefix = `test:gloo:${randomUUID()}`;
    const reports = await Promise.all([0, 1, 2].map((r) => rank(r, 3, '127.0.0.1', prefix)));
    for (const r of reports) {
      expect(r?.error).toBeUndefined();
      expect(r?.sum).toEqual([1 + 2 + 3, 0 + 0.5 + 1, 0 - 1 - 2]);
      expect(r?.min).toEqual([0.25, -2]);
      expect(r?.max).toEqual([2.25, 0]);
      expect(r?.root).toEqual([7, 8, 9]);
      expect(r?.big).toEqual([6, 6]);
      expect(r?.queued).toEqual([6, 6, 0 + 1 + 2, 3, 0]);
      expect(r?.after).toBe(30);
    }
  });

  it('says which address cannot be listened on, at once, when the advertised host is not this machine', async () => {
    const r = await rank(0, 2, '192.0.2.254', `test:gloo:${randomUUID()}`);
    expect(r?.stage).toBe('device');
    expect(r?.error).toMatch(/cannot listen on 192\.0\.2\.254/);
    expect(r?.ms).toBeLessThan(5_000);
  });

  it('fails the rendezvous with the Redis address when Redis cannot be reached', async () => {
    expect(() => gloo?.connect({ rank: 0, size: 2, host: '127.0.0.1', prefix: 'x', redisPort: 1, timeoutMs: 2_000 })).toThrow(
      /cannot reach Redis at 127\.0\.0\.1:1/,
    );
  });

  it('fails the rendezvous after the timeout, naming the rank, when a peer never comes', async () => {
    const r = await rank(0, 2, '127.0.0.1', `test:gloo:${randomUUID()}`);
    expect(r?.stage).toBe('connect');
    expect(r?.error).toMatch(/rank 0 \(127\.0\.0\.1\) could not connect to every other rank of 2/);
  });

  it("fails the survivor's next collective at once when a peer is killed", async () => {
    const prefix = `test:gloo:${randomUUID()}`;
    const [survivor, killed] = await Promise.all([rank(0, 2, '127.0.0.1', prefix), rank(1, 2, '127.0.0.1', prefix, 'die')]);
    expect(killed).toBeNull();
    expect(survivor?.error).toMatch(/closed by peer|Connection reset|Broken pipe/i);
  });
});
