// One rank for the collectives' tests: connects, runs the collectives, prints one JSON line.
//   node rank.cjs <rank> <size> <host> <prefix> [die-after-connect]
const { gloo } = require('..');

const [rank, size] = [Number(process.argv[2]), Number(process.argv[3])];
const t0 = Date.now();
try {
  const g = gloo.connect({ rank, size, host: process.argv[4], prefix: process.argv[5], timeoutMs: 10_000 });
  if (process.argv[6] === 'die') process.kill(process.pid, 'SIGKILL');
  const sum = g.allreduce(new Float32Array([rank + 1, 0.5 * rank, -rank]));
  const min = g.allreduce(new Float64Array([rank + 0.25, -rank]), 'min');
  const max = g.allreduce(new Float64Array([rank + 0.25, -rank]), 'max');
  const root = g.broadcast(new Float32Array(rank === 0 ? [7, 8, 9] : [0, 0, 0]), 0);
  // a buffer larger than Gloo's 1 MiB segments
  const big = g.allreduce(new Float32Array(3_000_001).fill(rank + 1));
  // queued allreduces run in order on the group's thread; a synchronous call waits for them first
  const queued = [new Float32Array(2_000_000).fill(rank + 1), new Float32Array([rank, 1]), new Float32Array(0)];
  const waits = queued.map((b) => g.allreduceAsync(b));
  const after = g.allreduce(new Float32Array([10 * rank]));
  for (const w of waits) w();
  g.barrier();
  g.close();
  console.log(
    JSON.stringify({
      sum: [...sum],
      min: [...min],
      max: [...max],
      root: [...root],
      big: [big[0], big[3_000_000]],
      queued: [queued[0][0], queued[0][1_999_999], ...queued[1], queued[2].length],
      after: after[0],
      ms: Date.now() - t0,
    }),
  );
} catch (err) {
  console.log(JSON.stringify({ error: err.message, stage: err.stage, ms: Date.now() - t0 }));
}
