// Model import memory: the API process's RSS while a GPT-2-124M-shaped model.safetensors (475 MB of
// zeros, written once to $TMPDIR) is imported by curl (its own process) into a local S3 server (its
// own process), through real HTTP. Needs PostgreSQL and Redis (as the tests do) and curl.
// Usage: npm run bench:import
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, expectedGpt2Shapes, gpt2Config, type NamedTensor, trainTokenizer } from '@crucible/model-files';
import type { ModelConfig } from '@crucible/training-config';
import { curl, sampleRss, startBenchApi, startBenchServices } from './bench-services';

const GPT2_SMALL: ModelConfig = {
  arch: 'gpt',
  vocabSize: 50257,
  nLayer: 12,
  nHead: 12,
  dModel: 768,
  blockSize: 1024,
  ffnMult: 4,
  dropout: 0,
  bias: true,
  tiedEmbeddings: true,
};

const dir = tmpdir();
const weightsPath = join(dir, 'crucible-bench-gpt2.safetensors');
if (!existsSync(weightsPath)) {
  // GPT-2 124M's tensors, named and shaped as the importer expects them
  const tensors = new Map<string, NamedTensor>();
  for (const [name, shape] of expectedGpt2Shapes(GPT2_SMALL)) {
    tensors.set(name, { dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  }
  writeFileSync(weightsPath, encodeSafetensors(tensors, { format: 'pt' }));
  console.log(`wrote ${weightsPath}; run again to measure (this process held the file)`);
  process.exit(0);
}
const services = await startBenchServices('import');
const api = await startBenchApi(services, 'import-mem');
const tokenizer = trainTokenizer('hello world', { type: 'bpe', vocabSize: 270 });
writeFileSync(join(dir, 'mem-config.json'), JSON.stringify(gpt2Config(GPT2_SMALL, tokenizer)));
writeFileSync(join(dir, 'mem-tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
const rss = sampleRss();
const t0 = Date.now();
const code = await curl([
  '-s',
  '-o',
  '/dev/null',
  '-w',
  '%{http_code}',
  '-H',
  `Authorization: Bearer ${api.secret}`,
  '-F',
  'name=gpt2-shape',
  '-F',
  `file=@${join(dir, 'mem-config.json')};filename=config.json`,
  '-F',
  `file=@${join(dir, 'mem-tokenizer.json')};filename=tokenizer.json`,
  '-F',
  `file=@${weightsPath};filename=model.safetensors`,
  `${api.url}/v1/models`,
]);
rss.stop();
const s = Date.now() - t0;
const mb = Number(spawnSync('stat', ['-c', '%s', weightsPath], { encoding: 'utf8' }).stdout) / 2 ** 20;
const [rss0, peak] = [rss.before, rss.peak()];
console.log(
  `status ${code}; ${mb.toFixed(0)} MB in ${(s / 1000).toFixed(1)} s (${(mb / (s / 1000)).toFixed(0)} MB/s); API process RSS ${(rss0 / 2 ** 20).toFixed(0)} MB before, peak ${(peak / 2 ** 20).toFixed(0)} MB (+${((peak - rss0) / 2 ** 20).toFixed(0)} MB)`,
);
await api.close();
services.stop();
process.exit(0);
