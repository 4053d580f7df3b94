// The worker image (infra/Dockerfile) builds the native CPU backend: no Docker engine runs here, so
// this reads the Dockerfile and checks the order of the steps that make the addon build and the
// check that fails the image build without it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const lines = readFileSync(join(import.meta.dirname, '../../../infra/Dockerfile'), 'utf8')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim());
const index = (re: RegExp) => lines.findIndex((l) => re.test(l));

describe('infra/Dockerfile', () => {
  it('installs a compiler and OpenBLAS, copies the whole addon package before npm ci, and checks the native backend after', () => {
    const apt = index(/^RUN apt-get update .*apt-get install .*\bbuild-essential\b.*\blibopenblas-dev\b/);
    const addon = index(/^COPY packages\/native-kernels packages\/native-kernels$/);
    const install = index(/^RUN npm ci\b/);
    const check = index(/^RUN npm run check:native$/);
    expect(apt, 'apt-get install build-essential libopenblas-dev').toBeGreaterThanOrEqual(0);
    expect(addon, 'COPY packages/native-kernels').toBeGreaterThan(apt);
    expect(install).toBeGreaterThan(addon);
    expect(check).toBeGreaterThan(install);
    // the check script the image runs exists under that name
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../../package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['check:native']).toMatch(/check-native\.ts$/);
  });
});
