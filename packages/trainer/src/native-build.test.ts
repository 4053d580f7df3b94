// The fast path from `npm install` alone: wherever a C compiler exists, the native addon is built
// and the trainer runs on it (never a silent fall back to wasm); and a fresh machine's build, with
// no OpenBLAS or oneDNN headers (hidden here with CRUCIBLE_NATIVE_WITHOUT), links neither library,
// loads, matches the cpu backend and trains (scripts/check-native.ts against that build).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { nativeKernels, nativeLoadError } from './native-backend';

const compiler = ['cc', 'gcc', 'clang'].find((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const addonPackage = realpathSync(dirname(createRequire(import.meta.url).resolve('@crucible/native-kernels/package.json')));

describe('the native backend from npm install alone', () => {
  it.skipIf(!compiler || process.env.CRUCIBLE_NO_NATIVE === '1')('is built and chosen wherever a C compiler exists', async () => {
    expect(nativeKernels(), `a C compiler (${compiler}) is here, yet: ${nativeLoadError()}`).not.toBeNull();
    if (process.env.TFJS_BACKEND && process.env.TFJS_BACKEND !== 'auto') return;
    const choice = await initBackend('auto');
    expect(['native', 'tensorflow', 'tensorflow-gpu']).toContain(choice.name);
  });

  it.skipIf(!compiler)(
    'builds without OpenBLAS and oneDNN headers, links neither, and trains on its own product',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'crucible-native-fresh-'));
      try {
        const built = join(addonPackage, 'build');
        cpSync(addonPackage, dir, { recursive: true, filter: (p) => p !== built && !p.startsWith(`${built}/`) });
        const build = spawnSync(process.execPath, ['build.cjs'], {
          cwd: dir,
          env: { ...process.env, CRUCIBLE_NATIVE_WITHOUT: 'openblas,dnnl' },
          encoding: 'utf8',
        });
        const addon = join(dir, 'build/Release/crucible_native.node');
        expect(existsSync(addon), `${build.stdout}\n${build.stderr}`).toBe(true);
        expect(build.stdout).toMatch(/building with Crucible's matrix product \(optional: apt-get install libopenblas-dev libdnnl-dev\)/);
        const ldd = spawnSync('ldd', [addon], { encoding: 'utf8' });
        if (ldd.status === 0) expect(ldd.stdout).not.toMatch(/openblas|dnnl/);
        const check = spawnSync(process.execPath, ['--import', 'tsx', 'packages/trainer/scripts/check-native.ts'], {
          cwd: root,
          env: { ...process.env, CRUCIBLE_NATIVE_ADDON: addon, TFJS_BACKEND: '' },
          encoding: 'utf8',
        });
        expect(check.status, `${check.stdout}\n${check.stderr}`).toBe(0);
        expect(check.stdout).toMatch(/products: auto of crucible; BLAS: none \(built without OpenBLAS\)/);
        expect(check.stdout).toMatch(/^ok: matches the cpu backend .* in 5 steps$/m);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    300_000,
  );
});
