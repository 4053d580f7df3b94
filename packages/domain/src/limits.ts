// Per-project limits: defaults from the environment (shared by the API and the worker), and
// overrides per project set by the server's operator (`npm run projects -- limits`).
import { Type } from '@sinclair/typebox';
import type { EnvReader } from './config';

export interface ProjectLimits {
  /** RATE_LIMIT_RPM: requests per minute per API key (Redis-backed, across API instances). 0 turns it off. Default 1200. */
  rateLimitRpm: number;
  /** MAX_CONCURRENT_JOBS: a project's jobs that train at once (validating_files or running); more wait in the queue. Default 2. */
  maxConcurrentJobs: number;
  /** MAX_QUEUED_JOBS: a project's jobs waiting to start (queued); creating one more answers 429 quota_exceeded. Default 20. */
  maxQueuedJobs: number;
  /** MAX_STORAGE_BYTES: bytes of files a project may store (datasets and prepared files). Default 20 GiB. */
  maxStorageBytes: number;
  /** MAX_JOB_TOKENS: the largest job, in tokens trained (steps x batch x block x accumulation). Default 2e9. */
  maxJobTokens: number;
  /** MAX_JOB_WORKERS: the most workers one job may train on at once (resources.workers, data parallelism). Default 4. */
  maxJobWorkers: number;
  /** MAX_PROMPT_CHARS: the longest prompt (or all chat messages together) a completion takes. Default 32768. */
  maxPromptChars: number;
  /** MAX_COMPLETION_TOKENS: the most tokens one completion may ask for (max_tokens). Default 2048. */
  maxCompletionTokens: number;
  /** MAX_CONCURRENT_INFERENCE: a project's inference requests in flight (queued or running); one more answers 429. Default 8. */
  maxConcurrentInference: number;
}

/** Project limits as the API shows and takes them (snake_case; an absent field uses the server's default). */
export const LIMIT_FIELDS = {
  rate_limit_rpm: 'rateLimitRpm',
  max_concurrent_jobs: 'maxConcurrentJobs',
  max_queued_jobs: 'maxQueuedJobs',
  max_storage_bytes: 'maxStorageBytes',
  max_job_tokens: 'maxJobTokens',
  max_job_workers: 'maxJobWorkers',
  max_prompt_chars: 'maxPromptChars',
  max_completion_tokens: 'maxCompletionTokens',
  max_concurrent_inference: 'maxConcurrentInference',
} as const satisfies Record<string, keyof ProjectLimits>;

export type LimitField = keyof typeof LIMIT_FIELDS;

export const ProjectLimitsObject = Type.Object(
  Object.fromEntries(Object.keys(LIMIT_FIELDS).map((k) => [k, Type.Integer({ minimum: 0 })])) as Record<LimitField, ReturnType<typeof Type.Integer>>,
);

export type LimitOverrides = Partial<Record<LimitField, number>>;

export function readProjectLimits(r: EnvReader): ProjectLimits {
  return {
    rateLimitRpm: r.int('RATE_LIMIT_RPM', 1200, 0, 10_000_000),
    maxConcurrentJobs: r.int('MAX_CONCURRENT_JOBS', 2, 1, 10_000),
    maxQueuedJobs: r.int('MAX_QUEUED_JOBS', 20, 1, 1_000_000),
    maxStorageBytes: r.int('MAX_STORAGE_BYTES', 20 * 2 ** 30, 0),
    maxJobTokens: r.int('MAX_JOB_TOKENS', 2_000_000_000, 1),
    maxJobWorkers: r.int('MAX_JOB_WORKERS', 4, 1, 1024),
    maxPromptChars: r.int('MAX_PROMPT_CHARS', 32_768, 1, 10_000_000),
    maxCompletionTokens: r.int('MAX_COMPLETION_TOKENS', 2048, 1, 4096),
    maxConcurrentInference: r.int('MAX_CONCURRENT_INFERENCE', 8, 1, 100_000),
  };
}

/** The limits in force for a project: its overrides over the server's defaults. */
export function effectiveLimits(defaults: ProjectLimits, overrides: LimitOverrides | null | undefined): ProjectLimits {
  const out = { ...defaults };
  for (const [field, key] of Object.entries(LIMIT_FIELDS) as Array<[LimitField, keyof ProjectLimits]>) {
    const v = overrides?.[field];
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) out[key] = v;
  }
  return out;
}

export function limitsObject(l: ProjectLimits): Record<LimitField, number> {
  return Object.fromEntries(Object.entries(LIMIT_FIELDS).map(([field, key]) => [field, l[key]])) as Record<LimitField, number>;
}
