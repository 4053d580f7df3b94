// Routing: with two workers, requests for a model go to the worker that has it loaded, so the
// other never loads it (without routing two idle workers take turns: Redis hands a job to the
// client that has waited longest). When that worker stops, its announcement goes with it and the
// other serves the model; a request routed to a worker killed without withdrawing waits only until
// that worker's announcement expires, then goes back to the shared queue.
import { ROUTE_PICKUP_MS } from '@crucible/queue';
import { parseWorkerConfig, type RunningWorker, startWorker } from '@crucible/worker';
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pretrainTinyBase } from '../support/base-model';
import { startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
let b: RunningWorker;
let client: OpenAI;

beforeAll(async () => {
  p = await startPlatform({ env: { WORKER_NAME: 'route-a' } });
  b = await startWorker(parseWorkerConfig({ ...p.env, WORKER_NAME: 'route-b' }), () => {});
  client = p.openai();
});
afterAll(async () => {
  await b?.close();
  await p?.close();
});

describe('model routing', () => {
  it('sends every request for a model to the worker that has it loaded, and to another once that worker stops', async () => {
    const model = await pretrainTinyBase(client, { seed: 3 });
    const a = p.worker as RunningWorker;
    const complete = () => client.completions.create({ model, prompt: 'ROMEO:', max_tokens: 4, temperature: 0 });
    const holding = () => [a, b].filter((w) => w.models().length > 0);
    await complete();
    expect(holding()).toHaveLength(1);
    const [holder] = holding() as [RunningWorker];
    const other = holder === a ? b : a;
    const holderName = holder === a ? 'route-a' : 'route-b';
    expect(await p.deps.routes.holders({ projectId: p.projectId, model })).toEqual([holderName]);
    for (let i = 0; i < 8; i++) await complete();
    expect(other.models()).toEqual([]);
    expect(holder.models()).toHaveLength(1);

    // the holder stops: it withdraws, and the other worker loads and serves the model
    await holder.close();
    expect(await p.deps.routes.holders({ projectId: p.projectId, model })).toEqual([]);
    await complete();
    expect(other.models()).toHaveLength(1);

    // a worker killed without withdrawing: its announcement outlives it (here for 3 s), and a
    // request routed to it waits on its queue until the announcement is gone, then goes to the
    // shared queue and is served
    const name = { projectId: p.projectId, model };
    await p.deps.routes.withdraw(other === a ? 'route-a' : 'route-b', [name]);
    await p.deps.routes.announce('ghost', [name], 3_000);
    const t0 = Date.now();
    const r = await complete();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3_000 - 200);
    expect(Date.now() - t0).toBeLessThan(3_000 + 3 * ROUTE_PICKUP_MS + 5_000);
    expect(r.choices[0]?.text).toEqual(expect.any(String));
    expect(await p.deps.routes.holders(name)).toEqual([other === a ? 'route-a' : 'route-b']);
  }, 240_000);
});
