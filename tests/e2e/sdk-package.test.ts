// @crucible/sdk as a user gets it: `npm pack`, installed into a fresh project outside this
// repository, used by plain `node` and type-checked by TypeScript under nodenext and bundler
// resolution, with and without the DOM library; then the README's SDK, openai and curl examples
// run as they stand against a running stack.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { startPlatform, type TestPlatform } from '../support/platform';
import { readmeExamples } from '../support/readme-examples';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '../..');
const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
const locked = (name: string) => `${name}@${lock.packages[`node_modules/${name}`]?.version}`;

let p: TestPlatform;
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crucible-sdk-user-'));
  const packed = await run('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir, '-w', '@crucible/sdk'], { cwd: repo });
  const tarball = join(dir, packed.stdout.trim().split('\n').at(-1) as string);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'sdk-user', private: true, type: 'module' }));
  // the same versions as this repository's lock file, from npm's cache when it has them
  await run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, locked('openai'), locked('typescript'), locked('@types/node')],
    { cwd: dir, timeout: 240_000 },
  );
  p = await startPlatform();
  env = { ...process.env, CRUCIBLE_BASE_URL: `${p.url}/v1`, CRUCIBLE_API_KEY: p.apiKey };
  writeFileSync(join(dir, 'shakespeare.txt'), shakespeare(20_000));
});
afterAll(async () => {
  await p?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed SDK in a project outside the repository', () => {
  it('ships built JavaScript and declarations only, with its dependencies declared', async () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'node_modules/@crucible/sdk/package.json'), 'utf8'));
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(Object.keys(pkg.dependencies)).toEqual(['openapi-fetch']);
    const { stdout } = await run('find', ['node_modules/@crucible/sdk', '-type', 'f'], { cwd: dir });
    const files = stdout.trim().split('\n').sort();
    expect(files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toBe(false);
    expect(files).toContain('node_modules/@crucible/sdk/dist/index.js');
    expect(files).toContain('node_modules/@crucible/sdk/dist/node.d.ts');
  });

  it('type-checks under nodenext and bundler resolution, with and without the DOM library', async () => {
    writeFileSync(
      join(dir, 'app.ts'),
      [
        "import { Crucible, CrucibleApiError, unwrap, type FineTuningJob, type JobProgress } from '@crucible/sdk';",
        'const crucible = new Crucible({ baseUrl: "http://127.0.0.1:1/v1", apiKey: "k" });',
        'export async function main(): Promise<FineTuningJob> {',
        "  const file = await crucible.uploadFile({ name: 'a.txt', data: new Uint8Array([104, 105]) }, { purpose: 'pretrain', onProgress: (p) => p.loaded });",
        "  const job = await crucible.createJob({ model: 'gpt-nano', training_file: file.id });",
        "  const metrics = unwrap(await crucible.api.GET('/fine_tuning/jobs/{id}/metrics', { params: { path: { id: job.id } } }));",
        '  const first: number | null = metrics.data[0]?.train_loss ?? null;',
        '  for await (const e of crucible.jobEvents(job.id)) if (e.type === "metrics") break;',
        '  const onProgress = (p: JobProgress) => p.fraction;',
        '  try { return await crucible.waitForJob(job.id, { onProgress }); } catch (err) { if (err instanceof CrucibleApiError) console.log(err.status, err.code, first); throw err; }',
        '}',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'server.ts'),
      [
        "import { Crucible } from '@crucible/sdk';",
        "import { downloadModelToFile, uploadFileFromPath } from '@crucible/sdk/node';",
        'const crucible = new Crucible({ baseUrl: "http://127.0.0.1:1/v1", apiKey: "k" });',
        "export const go = async () => { const f = await uploadFileFromPath(crucible, 'a.txt'); return downloadModelToFile(crucible, f.id, 'm.tgz'); };",
      ].join('\n'),
    );
    const cases: { name: string; module: string; resolution: string; lib: string[]; types: string[]; files: string[] }[] = [
      { name: 'nodenext, no DOM', module: 'nodenext', resolution: 'nodenext', lib: ['es2022'], types: ['node'], files: ['app.ts', 'server.ts'] },
      { name: 'nodenext, DOM', module: 'nodenext', resolution: 'nodenext', lib: ['es2022', 'dom'], types: ['node'], files: ['app.ts', 'server.ts'] },
      { name: 'bundler, DOM only (a browser app)', module: 'esnext', resolution: 'bundler', lib: ['es2022', 'dom'], types: [], files: ['app.ts'] },
      { name: 'bundler, no DOM', module: 'esnext', resolution: 'bundler', lib: ['es2022'], types: ['node'], files: ['app.ts', 'server.ts'] },
    ];
    for (const c of cases) {
      const config = {
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          target: 'es2022',
          module: c.module,
          moduleResolution: c.resolution,
          lib: c.lib,
          types: c.types,
        },
        files: c.files,
      };
      writeFileSync(join(dir, 'tsconfig.check.json'), JSON.stringify(config));
      const r = await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.check.json'], { cwd: dir }).catch((e) => e);
      expect(`${c.name}: ${r.stdout}${r.stderr ?? ''}`.trim()).toBe(`${c.name}:`);
    }
  });

  it('runs the README examples: the SDK with plain node, the openai client, curl', async () => {
    const examples = readmeExamples();
    expect([...examples.keys()].sort()).toEqual(['curl.sh', 'openai.mjs', 'sdk.mjs']);
    for (const [name, code] of examples) writeFileSync(join(dir, name), code);

    const sdk = await run(process.execPath, ['sdk.mjs'], { cwd: dir, env, timeout: 240_000 });
    const out = sdk.stdout;
    expect(out).toMatch(/^uploaded 20000 of 20000 bytes$/m);
    expect(out).toMatch(/^step 20\/20 loss \d+\.\d{3}$/m);
    const [, jobId, model] = /^job (ftjob-\S+) succeeded: (\S+)$/m.exec(out) ?? [];
    expect(model).toBeTruthy();
    expect(out).toContain(`${jobId} succeeded`); // the listing
    expect(out).toMatch(/^404 job_not_found$/m);
    const archive = readFileSync(join(dir, 'model.tar.gz'));
    expect([archive[0], archive[1]]).toEqual([0x1f, 0x8b]);
    expect(out).toContain(`saved model.tar.gz (${archive.length} bytes)`);

    const openai = await run(process.execPath, ['openai.mjs'], { cwd: dir, env, timeout: 120_000 });
    expect(openai.stdout).toMatch(/^file file-\S+ processed$/m);
    expect(openai.stdout).toContain(`job ${jobId} ${model}`);
    expect(openai.stdout).toMatch(/^event .+/m);
    expect(openai.stdout).toMatch(/^completion ".+"$/m);
    expect(openai.stdout).toMatch(/^chat (stop|length)$/m);

    const curl = await run('bash', ['-euo', 'pipefail', 'curl.sh'], {
      cwd: dir,
      env: { ...env, CRUCIBLE_JOB: jobId as string, CRUCIBLE_MODEL: model as string },
      timeout: 120_000,
    });
    expect(curl.stdout).toContain('"object":"file"');
    expect(curl.stdout).toContain(`"id":"${jobId}"`);
    expect(curl.stdout).toContain('data: [DONE]');
    expect(curl.stdout).toContain('"object":"text_completion"');
  });
});
