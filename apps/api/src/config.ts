// The API's configuration, parsed once from the environment at boot.
import { type Env, EnvReader, type PlatformConfig, readPlatformConfig } from '@crucible/domain';

export interface ApiConfig extends PlatformConfig {
  host: string;
  port: number;
  /** Largest accepted upload in bytes. Default 512 MiB. */
  maxUploadBytes: number;
  /** MAX_MODEL_UPLOAD_BYTES: largest model.safetensors an import accepts (streamed, never held in memory). Default 8 GiB. */
  maxModelUploadBytes: number;
  /** How long a completion request waits for a worker. Default 120 s. */
  inferenceTimeoutMs: number;
  logLevel: string;
  /** UPLOAD_STALE_MS: an upload unfinished this long was cut short by a crash and is removed. Default 1 h. */
  uploadStaleMs: number;
}

export function parseApiConfig(env: Env): ApiConfig {
  const r = new EnvReader(env);
  const cfg: ApiConfig = {
    ...readPlatformConfig(r),
    host: r.str('HOST', '127.0.0.1'),
    port: r.int('PORT', 8080, 0, 65535),
    maxUploadBytes: r.int('MAX_UPLOAD_BYTES', 512 * 2 ** 20, 1),
    maxModelUploadBytes: r.int('MAX_MODEL_UPLOAD_BYTES', 8 * 2 ** 30, 1),
    inferenceTimeoutMs: r.int('INFERENCE_TIMEOUT_MS', 120_000, 100),
    logLevel: r.str('LOG_LEVEL', 'info'),
    uploadStaleMs: r.int('UPLOAD_STALE_MS', 3_600_000, 1_000),
  };
  r.done();
  return cfg;
}
