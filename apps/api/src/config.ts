// The API's configuration, parsed once from the environment at boot.
import { fileURLToPath } from 'node:url';
import { type Env, EnvReader, type PlatformConfig, readPlatformConfig } from '@crucible/domain';

export interface ApiConfig extends PlatformConfig {
  host: string;
  port: number;
  /** MAX_UPLOAD_BYTES: largest accepted dataset upload in bytes (streamed, never held in memory). Default 512 MiB, at most 2 GiB - 1. */
  maxUploadBytes: number;
  /** MAX_MODEL_UPLOAD_BYTES: largest model.safetensors an import accepts (streamed, never held in memory). Default 8 GiB. */
  maxModelUploadBytes: number;
  /** AUTH_FAILURES_PER_MINUTE: failed authentications accepted per client address per minute (then 429); 0 turns it off. Default 30. */
  authFailuresPerMinute: number;
  /** REQUEST_TIMEOUT_MS: a request's headers and body must arrive within this (answered 408). Default 30 min (large model uploads). */
  requestTimeoutMs: number;
  /** BODY_IDLE_TIMEOUT_MS: a request body that makes no progress for this long is cut off (408). Default 30 s. */
  bodyIdleTimeoutMs: number;
  /** How long a completion request waits for a worker. Default 120 s. */
  inferenceTimeoutMs: number;
  logLevel: string;
  /** UPLOAD_STALE_MS: an upload unfinished this long was cut short by a crash and is removed. Default 1 h. */
  uploadStaleMs: number;
  /** UPLOAD_WAIT_MS: how long an upload's answer waits for validation before answering `pending`. Default 10 s. */
  uploadWaitMs: number;
  /** Dataset validation limits: MAX_LINE_BYTES (default 1 MiB), MIN_EXAMPLES (default 1); the size limit is MAX_UPLOAD_BYTES. */
  datasetLimits: { maxLineBytes: number; minExamples: number; maxBytes: number };
  /** FILE_PROCESSING_CONCURRENCY: files validated or prepared at once by this API process. Default 2. */
  fileProcessingConcurrency: number;
  /** FILE_WORK_THREADS: worker threads for heavy file work off the event loop: validation, preparation, statistics, previews, estimates (0: on it). Default FILE_PROCESSING_CONCURRENCY. */
  fileWorkThreads: number;
  /** FILE_PENDING_RETRY_MS: a file pending this long is processed again (its processor died). Default 2 min. */
  filePendingRetryMs: number;
  /** DASHBOARD_DIR: the built dashboard served at /dashboard/. Default: apps/dashboard/dist (built by `npm ci` / `npm run build`). */
  dashboardDir: string;
  /** KEY_CACHE_TTL_MS: how long a key (and its project's limits) is cached in the process; revocations evict at once. Default 30 s. */
  keyCacheTtlMs: number;
  /** JOB_CACHE_TTL_MS: how long a job record is cached in the process (dropped at once when the database reports a change; 0 turns it off). Default 10 s. */
  jobCacheTtlMs: number;
  /** IDEMPOTENCY_TTL_MS: how long a POST's answer is kept for replay under its Idempotency-Key. Default 24 h. */
  idempotencyTtlMs: number;
  webhooks: {
    /** WEBHOOK_MAX_ATTEMPTS: attempts before a delivery is marked failed. Default 8. */
    maxAttempts: number;
    /** WEBHOOK_RETRY_BASE_MS: first retry delay; doubled each attempt (with jitter), at most 1 h. Default 10 s. */
    retryBaseMs: number;
    /** WEBHOOK_TIMEOUT_MS: a receiver must answer within this. Default 10 s. */
    timeoutMs: number;
    /** WEBHOOK_POLL_MS: how often the dispatcher looks for due deliveries. Default 1 s. */
    pollMs: number;
    /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: allow receivers on loopback, private and link-local addresses (intranets). Default false. */
    allowPrivateNetworks: boolean;
  };
}

export function parseApiConfig(env: Env): ApiConfig {
  const r = new EnvReader(env);
  const fileProcessingConcurrency = r.int('FILE_PROCESSING_CONCURRENCY', 2, 1, 64);
  const maxUploadBytes = r.int('MAX_UPLOAD_BYTES', 512 * 2 ** 20, 1, 2 ** 31 - 1);
  const cfg: ApiConfig = {
    ...readPlatformConfig(r),
    host: r.str('HOST', '127.0.0.1'),
    port: r.int('PORT', 8080, 0, 65535),
    maxUploadBytes,
    maxModelUploadBytes: r.int('MAX_MODEL_UPLOAD_BYTES', 8 * 2 ** 30, 1),
    requestTimeoutMs: r.int('REQUEST_TIMEOUT_MS', 30 * 60_000, 1_000),
    authFailuresPerMinute: r.int('AUTH_FAILURES_PER_MINUTE', 30, 0, 1_000_000),
    bodyIdleTimeoutMs: r.int('BODY_IDLE_TIMEOUT_MS', 30_000, 100),
    inferenceTimeoutMs: r.int('INFERENCE_TIMEOUT_MS', 120_000, 100),
    logLevel: r.str('LOG_LEVEL', 'info'),
    uploadStaleMs: r.int('UPLOAD_STALE_MS', 3_600_000, 1_000),
    uploadWaitMs: r.int('UPLOAD_WAIT_MS', 10_000, 0, 600_000),
    datasetLimits: {
      maxLineBytes: r.int('MAX_LINE_BYTES', 2 ** 20, 16, 2 ** 30),
      minExamples: r.int('MIN_EXAMPLES', 1, 1, 10_000_000),
      maxBytes: maxUploadBytes,
    },
    fileProcessingConcurrency,
    filePendingRetryMs: r.int('FILE_PENDING_RETRY_MS', 120_000, 1_000),
    fileWorkThreads: r.int('FILE_WORK_THREADS', fileProcessingConcurrency, 0, 64),
    dashboardDir: r.str('DASHBOARD_DIR', fileURLToPath(new URL('../../dashboard/dist', import.meta.url))),
    keyCacheTtlMs: r.int('KEY_CACHE_TTL_MS', 30_000, 0, 3_600_000),
    jobCacheTtlMs: r.int('JOB_CACHE_TTL_MS', 10_000, 0, 3_600_000),
    idempotencyTtlMs: r.int('IDEMPOTENCY_TTL_MS', 24 * 3_600_000, 1_000),
    webhooks: {
      maxAttempts: r.int('WEBHOOK_MAX_ATTEMPTS', 8, 1, 100),
      retryBaseMs: r.int('WEBHOOK_RETRY_BASE_MS', 10_000, 10, 3_600_000),
      timeoutMs: r.int('WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
      pollMs: r.int('WEBHOOK_POLL_MS', 1_000, 10, 60_000),
      allowPrivateNetworks: r.bool('WEBHOOK_ALLOW_PRIVATE_NETWORKS', false),
    },
  };
  r.done();
  return cfg;
}
