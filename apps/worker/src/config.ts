// The worker's configuration, parsed once from the environment at boot.
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname, networkInterfaces, totalmem } from 'node:os';
import { type Env, EnvReader, type PlatformConfig, readPlatformConfig } from '@crucible/domain';
import type { GemmChoice } from '@crucible/trainer';

export interface WorkerConfig extends PlatformConfig {
  /** Training jobs run at once by this process. Default 1 (TensorFlow.js runs on one thread). */
  trainingConcurrency: number;
  /** INFERENCE_CONCURRENCY: requests served at once; those for one model are decoded together (continuous batching). Default 16. */
  inferenceConcurrency: number;
  /** DECODE_MAX_BATCH: sequences (requests' choices) of one model decoded in one step at most; the others wait their turn. Default 32. */
  decodeMaxBatch: number;
  /** PREFILL_CHUNK: prompt tokens a request reads per decoding step (chunked prefill). Default 64. */
  prefillChunk: number;
  /**
   * DECODE_CACHE_BYTES: memory for the KV caches of the sequences decoded at once, per loaded model
   * (a sequence waits its turn when its cache, grown to its prompt plus token budget, would not
   * fit). Default 20% of the machine's memory.
   */
  decodeCacheBytes: number;
  /** EVALUATION_CONCURRENCY: evaluations run at once. Default 1. */
  evaluationConcurrency: number;
  /** TFJS_BACKEND: tensorflow-gpu | tensorflow | wasm | cpu | auto. Default auto. */
  backend: 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
  /**
   * MODEL_CACHE_BYTES: memory for the models loaded for inference (bytes, or with a unit: 8GiB,
   * 512MB). Default 40% of the machine's memory (its cgroup limit where lower).
   */
  modelCacheBytes: number;
  /** Checkpoints kept per job (older ones are deleted). Default 3. */
  keepCheckpoints: number;
  /** BullMQ lock on a running queue entry. Default 120 s (dead workers are found sooner by heartbeats). */
  lockDurationMs: number;
  /** TRANSIENT_RETRY_MS: how long a run retries in place while PostgreSQL, Redis or S3 is unreachable. Default 10 min. */
  transientRetryMs: number;
  /** WORKER_NAME: names this worker in leases and logs. Default host name and pid. */
  workerName: string;
  /** NATIVE_KERNELS: use @crucible/native-kernels when built (the native backend; its products on wasm). Default true. */
  nativeKernels: boolean;
  /** NATIVE_THREADS: threads of the native kernels. Default: every core. */
  nativeThreads: number;
  /** NATIVE_PRECISION: 'bf16' runs the native backend's matrix products on bf16 operands where the CPU can. Default float32. */
  /** The precision of jobs that name none: 'auto' lets the CPU choose (bf16 where it has AVX512-BF16 or AMX-BF16). */
  nativePrecision: 'auto' | 'float32' | 'bf16';
  /** NATIVE_GEMM: the library for float32 products: auto (the fastest measured per shape), crucible, onednn or openblas. Default auto. */
  nativeGemm: GemmChoice;
  /** Multi-worker jobs (data parallelism over Gloo). */
  gang: GangConfig;
}

export interface GangConfig {
  /** WORKER_ADVERTISE_HOST: the address the other ranks of a job reach this worker at (Gloo listens on it). Default: the first non-loopback IPv4 address, else 127.0.0.1. */
  advertiseHost: string;
  /** GANG_ASSEMBLY_MS: how long a rank waits for the others to come before its entry waits and tries again. Default 60 s. */
  assemblyMs: number;
  /** GANG_RETRY_MS: how long a rank's entry waits before it tries again. Default 5 s. */
  retryMs: number;
  /** GANG_STAGE_MS: how long the ranks wait for the slowest to read the data and build its trainer. Default 10 min. */
  stageMs: number;
  /** GANG_COLLECTIVE_TIMEOUT_MS: the bound on Gloo's rendezvous and on each collective (a rank silent for longer is lost). Default 5 min. */
  collectiveMs: number;
  /** GANG_MAX_RENDEZVOUS_FAILURES: failed rendezvous in a row before the job fails. Default 3. */
  maxRendezvousFailures: number;
  /** GANG_CHECKSUM_INTERVAL: steps between the ranks' parameter checksums. Default 100. */
  checksumInterval: number;
}

/** The first non-loopback IPv4 address of this machine, else 127.0.0.1. */
function defaultAdvertiseHost(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    const a = addrs?.find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return a.address;
  }
  return '127.0.0.1';
}

const GEMM_CHOICES = ['auto', 'crucible', 'onednn', 'openblas'] as const satisfies readonly GemmChoice[];
const BACKENDS = ['auto', 'tensorflow-gpu', 'tensorflow', 'native', 'wasm', 'cpu'] as const;

export function parseWorkerConfig(env: Env): WorkerConfig {
  const r = new EnvReader(env);
  const backend = r.str('TFJS_BACKEND', 'auto');
  if (!(BACKENDS as readonly string[]).includes(backend)) r.problems.push(`TFJS_BACKEND must be one of ${BACKENDS.join(', ')}, got ${backend}`);
  const cfg: WorkerConfig = {
    ...readPlatformConfig(r),
    trainingConcurrency: r.int('TRAINING_CONCURRENCY', 1, 1, 64),
    inferenceConcurrency: r.int('INFERENCE_CONCURRENCY', 16, 1, 256),
    decodeMaxBatch: r.int('DECODE_MAX_BATCH', 32, 1, 1024),
    prefillChunk: r.int('PREFILL_CHUNK', 64, 1, 65536),
    decodeCacheBytes: byteSize(r, 'DECODE_CACHE_BYTES', Math.floor(0.2 * machineMemory())),
    evaluationConcurrency: r.int('EVALUATION_CONCURRENCY', 1, 1, 64),
    backend: backend as WorkerConfig['backend'],
    modelCacheBytes: byteSize(r, 'MODEL_CACHE_BYTES', Math.floor(0.4 * machineMemory())),
    keepCheckpoints: r.int('KEEP_CHECKPOINTS', 3, 1, 1000),
    lockDurationMs: r.int('WORKER_LOCK_MS', 120_000, 5_000),
    transientRetryMs: r.int('TRANSIENT_RETRY_MS', 600_000, 0),
    workerName: r.str('WORKER_NAME', `${hostname()}:${process.pid}`),
    nativeKernels: r.int('NATIVE_KERNELS', 1, 0, 1) === 1,
    nativeThreads: r.int('NATIVE_THREADS', availableParallelism(), 1, 256),
    nativePrecision: r.str('NATIVE_PRECISION', 'auto') as WorkerConfig['nativePrecision'],
    nativeGemm: r.str('NATIVE_GEMM', 'auto') as GemmChoice,
    gang: {
      advertiseHost: r.str('WORKER_ADVERTISE_HOST', defaultAdvertiseHost()),
      assemblyMs: r.int('GANG_ASSEMBLY_MS', 60_000, 100),
      retryMs: r.int('GANG_RETRY_MS', 5_000, 10),
      stageMs: r.int('GANG_STAGE_MS', 600_000, 100),
      collectiveMs: r.int('GANG_COLLECTIVE_TIMEOUT_MS', 300_000, 1_000),
      maxRendezvousFailures: r.int('GANG_MAX_RENDEZVOUS_FAILURES', 3, 1, 1000),
      checksumInterval: r.int('GANG_CHECKSUM_INTERVAL', 100, 1),
    },
  };
  if (!(GEMM_CHOICES as readonly string[]).includes(cfg.nativeGemm))
    r.problems.push(`NATIVE_GEMM must be one of ${GEMM_CHOICES.join(', ')}, got ${cfg.nativeGemm}`);
  if (!['auto', 'float32', 'bf16'].includes(cfg.nativePrecision)) r.problems.push(`NATIVE_PRECISION must be auto, float32 or bf16, got ${cfg.nativePrecision}`);
  if (env.MODEL_CACHE_SIZE !== undefined && env.MODEL_CACHE_SIZE !== '')
    r.problems.push('MODEL_CACHE_SIZE (a count of models) was replaced by MODEL_CACHE_BYTES (a memory budget, e.g. 8GiB)');
  r.done();
  return cfg;
}

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** A size in bytes: a whole number, or a number with a unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB). */
export function byteSize(r: EnvReader, name: string, fallback: number): number {
  const raw = r.optional(name);
  if (raw === undefined) return fallback;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  const n = m && unit ? Math.floor(Number(m[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    r.problems.push(`${name} must be a size in bytes, e.g. 8GiB or 536870912, got ${JSON.stringify(raw)}`);
    return fallback;
  }
  return n;
}

/** The memory this process may use: the machine's, or its cgroup's limit where that is lower (a container). */
export function machineMemory(): number {
  const total = totalmem();
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const limit = Number(readFileSync(file, 'utf8').trim());
      if (Number.isFinite(limit) && limit > 0 && limit < total) return limit;
    } catch {
      // not in a cgroup with a limit (or not on Linux)
    }
  }
  return total;
}
