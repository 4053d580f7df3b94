// Dataset upload memory and speed: JSONL files of 10, 100 and 500 MB (written once to $TMPDIR)
// uploaded by curl (its own process) through real HTTP to the API (this process), which streams
// them into a local S3 server (its own process) and validates them in the background. Prints the
// API process's RSS before and at its peak during each upload and its validation, the upload's
// MB/s, and a direct multipart upload of the same file to the same S3 server (@aws-sdk/lib-storage)
// for comparison. Needs PostgreSQL, Redis and curl.
// Usage: npm run bench:upload [-- 10 100 500]
import { closeSync, createReadStream, existsSync, openSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Storage } from '@crucible/storage';
import { curl, sampleRss, startBenchApi, startBenchServices } from './bench-services';

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const MB = 2 ** 20;
const dir = tmpdir();

function dataset(mb: number): string {
  const path = join(dir, `crucible-bench-upload-${mb}mb.jsonl`);
  if (existsSync(path) && statSync(path).size >= mb * MB) return path;
  const fd = openSync(path, 'w');
  const block = Array.from(
    { length: 1000 },
    (_, i) => `${JSON.stringify({ text: `record ${i}: To be, or not to be, that is the question. `.repeat(4) })}\n`,
  ).join('');
  for (let written = 0; written < mb * MB; written += Buffer.byteLength(block)) writeSync(fd, block);
  closeSync(fd);
  return path;
}

const services = await startBenchServices('upload');
const api = await startBenchApi(services, 'upload-bench', { UPLOAD_WAIT_MS: '0' });
const { url, secret } = api;
const direct = new Storage({ endpoint: services.s3Endpoint, region: 'us-east-1', bucket: 'upload-bench', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });

console.log(`upload bench on ${process.platform}/${process.arch}, node ${process.version}; API in this process, curl and the S3 server in their own`);
console.log('size     | upload (API)   | validation  | direct multipart | API RSS before -> peak');
for (const mb of sizes.length ? sizes : [10, 100, 500]) {
  const path = dataset(mb);
  const bytes = statSync(path).size;
  const rss = sampleRss();
  const t0 = performance.now();
  const out = await curl([
    '-s',
    '-H',
    `Authorization: Bearer ${secret}`,
    '-F',
    'purpose=pretrain',
    '-F',
    `file=@${path};filename=bench.jsonl`,
    `${url}/v1/files`,
  ]);
  const uploadS = (performance.now() - t0) / 1000;
  const file = JSON.parse(out) as { id: string; status: string; error?: unknown };
  if (!file.id) throw new Error(`upload failed: ${out}`);
  // validation runs in the background: wait for it (it streams the object back from S3)
  let status = file.status;
  while (status === 'pending') {
    await new Promise((r) => setTimeout(r, 50));
    status = ((await (await fetch(`${url}/v1/files/${file.id}`, { headers: { authorization: `Bearer ${secret}` } })).json()) as { status: string }).status;
  }
  const totalS = (performance.now() - t0) / 1000;
  rss.stop();
  const [rss0, peak] = [rss.before, rss.peak()];
  const d0 = performance.now();
  await direct.putStream(`direct/${mb}`, createReadStream(path));
  const directS = (performance.now() - d0) / 1000;
  const rate = (s: number) => `${(bytes / MB / s).toFixed(0)} MB/s`;
  console.log(
    `${String(mb).padStart(4)} MB  | ${uploadS.toFixed(1).padStart(5)} s ${rate(uploadS).padStart(8)} | ${(totalS - uploadS).toFixed(1).padStart(5)} s ${status.padEnd(5)} | ${directS.toFixed(1).padStart(5)} s ${rate(directS).padStart(8)} | ${(rss0 / MB).toFixed(0)} -> ${(peak / MB).toFixed(0)} MB (+${((peak - rss0) / MB).toFixed(0)})`,
  );
}
await api.close();
direct.destroy();
services.stop();
process.exit(0);
