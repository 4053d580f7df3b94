// Data parallelism against a single worker: 2 ranks (separate processes, 1 thread each, Gloo over
// TCP, the rendezvous in the local Redis) with micro-batch 4 train like 1 rank with micro-batch 8,
// for 50 steps. A third run, 1 rank with micro-batch 4 (a rank that never averaged), shows that the
// tolerance tells them apart.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const { gloo, glooMissing } = createRequire(import.meta.url)('@crucible/collectives') as typeof import('@crucible/collectives');
const run = promisify(execFile);
const RANK = join(__dirname, '../bench/ddp-rank.ts');
const TSX = join(__dirname, '../../../node_modules/.bin/tsx');

interface Report {
  losses: number[];
  checkpoints: Record<string, Record<string, number[]>>;
  error?: string;
}

/** One run of ddp-rank.ts (50 steps unless `args` says otherwise); a run that failed reports its error. */
async function rank(args: string[]): Promise<Report> {
  const out = join(tmpdir(), `ddp-${randomUUID()}.json`);
  await run(TSX, [RANK, '--steps', '50', '--checkpoint-interval', '10', '--threads', '1', '--out', out, ...args], { timeout: 240_000 }).catch(() => {});
  return JSON.parse(readFileSync(out, 'utf8')) as Report;
}

/** ||a - b|| / ||b|| over every parameter at one checkpoint. */
function relative(a: Record<string, number[]>, b: Record<string, number[]>): number {
  let diff = 0;
  let norm = 0;
  for (const [n, y] of Object.entries(b)) {
    const x = a[n] as number[];
    for (let i = 0; i < y.length; i++) {
      diff += ((x[i] as number) - (y[i] as number)) ** 2;
      norm += (y[i] as number) ** 2;
    }
  }
  return Math.sqrt(diff / norm);
}

describe.skipIf(!gloo)(`data-parallel training${glooMissing ? ` (skipped: ${glooMissing})` : ''}`, () => {
  let ranks: Report[];
  let single: Report;
  let halfBatch: Report;
  beforeAll(async () => {
    const prefix = `test:ddp:${randomUUID()}`;
    ranks = await Promise.all([0, 1].map((r) => rank(['--rank', String(r), '--size', '2', '--batch', '4', '--prefix', prefix])));
    single = await rank(['--size', '1', '--batch', '8']);
    halfBatch = await rank(['--size', '1', '--batch', '4']);
  }, 600_000);

  it('keeps the ranks identical, and trains like one worker with twice the micro-batch within 1e-5 relative', () => {
    const [r0, r1] = ranks as [Report, Report];
    expect(Object.keys(r0.checkpoints)).toEqual(['10', '20', '30', '40', '50']);
    for (const step of Object.keys(single.checkpoints)) {
      expect(r1.checkpoints[step]).toEqual(r0.checkpoints[step]); // bit for bit
      expect(relative(r0.checkpoints[step] as Record<string, number[]>, single.checkpoints[step] as Record<string, number[]>)).toBeLessThan(1e-5);
      // without the average the run is another one: the tolerance tells them apart
      expect(relative(halfBatch.checkpoints[step] as Record<string, number[]>, single.checkpoints[step] as Record<string, number[]>)).toBeGreaterThan(1e-3);
    }
  });

  it('reports the loss curve of the single worker (the mean of the ranks’ losses)', () => {
    const [r0, r1] = ranks as [Report, Report];
    expect(r0.losses).toHaveLength(50);
    expect(r1.losses).toEqual(r0.losses);
    for (const [i, l] of r0.losses.entries()) expect(l).toBeCloseTo(single.losses[i] as number, 4);
    expect(Math.max(...halfBatch.losses.map((l, i) => Math.abs(l - (single.losses[i] as number))))).toBeGreaterThan(1e-2);
  });

  it('trains LoRA adapters over a frozen base like one worker with twice the micro-batch', async () => {
    const prefix = `test:ddp:${randomUUID()}`;
    const lora = ['--lora', '--steps', '20'];
    const [r0, r1] = await Promise.all([0, 1].map((r) => rank([...lora, '--rank', String(r), '--size', '2', '--batch', '4', '--prefix', prefix])));
    const one = await rank([...lora, '--size', '1', '--batch', '8']);
    expect(Object.keys(one.checkpoints)).toEqual(['10', '20']);
    for (const step of Object.keys(one.checkpoints)) {
      expect(Object.keys(r0?.checkpoints[step] ?? {}).every((n) => n.includes('lora'))).toBe(true); // only the adapters train
      expect(r1?.checkpoints[step]).toEqual(r0?.checkpoints[step]);
      expect(relative(r0?.checkpoints[step] as Record<string, number[]>, one.checkpoints[step] as Record<string, number[]>)).toBeLessThan(1e-5);
    }
  });

  it('accumulates micro-batches before the streamed allreduce: 2 ranks x 2 rows x 2 micro-batches train like 1 rank x 8 rows', async () => {
    const prefix = `test:ddp:${randomUUID()}`;
    const short = ['--steps', '20'];
    const [r0] = await Promise.all([0, 1].map((r) => rank([...short, '--rank', String(r), '--size', '2', '--batch', '2', '--accum', '2', '--prefix', prefix])));
    const one = await rank([...short, '--size', '1', '--batch', '8']);
    for (const step of Object.keys(one.checkpoints)) {
      expect(relative(r0?.checkpoints[step] as Record<string, number[]>, one.checkpoints[step] as Record<string, number[]>)).toBeLessThan(1e-5);
    }
  });

  it('fails loudly, before the first step, when the ranks hold different frozen bases', async () => {
    const prefix = `test:ddp:${randomUUID()}`;
    const reports = await Promise.all(
      [0, 1].map((r) => rank(['--lora', '--base-per-rank', '--steps', '5', '--rank', String(r), '--size', '2', '--batch', '4', '--prefix', prefix])),
    );
    for (const r of reports) expect(r.error).toMatch(/^DivergenceError: the ranks' parameters diverged at step 0/);
  });
});
