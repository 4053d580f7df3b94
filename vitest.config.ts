import { defineConfig } from 'vitest/config';

// Three projects: `unit` (pure code next to its source, no services), `trainer-wasm` (the
// trainer's unit tests on the wasm backend) and `integration` (real PostgreSQL, Redis, S3 server
// and HTTP; see tests/setup).
export default defineConfig({
  test: {
    // two workers even on a 2-core machine, where the default leaves one core free and so runs
    // one file at a time: the unit files then run two at a time (CI: 102 s instead of 168 s);
    // the integration files still run one at a time, after them
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // the trainer's tests again on the wasm backend: every backend present runs them (the
        // 'unit' project takes the default, the native backend where its addon is built)
        test: {
          name: 'trainer-wasm',
          include: ['packages/trainer/src/**/*.test.ts', 'apps/worker/src/sft-loss.test.ts'],
          // these pick the native backend themselves: running them here would repeat the unit run
          exclude: [
            'packages/trainer/src/native-kernels.test.ts',
            'packages/trainer/src/native-pool.test.ts',
            'packages/trainer/src/native-gemm.test.ts',
            'packages/trainer/src/native-build.test.ts',
          ],
          env: { TFJS_BACKEND: 'wasm' },
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
