// The central registry of error codes. Services throw CrucibleError; the API maps it to
// { "error": { "code", "message", "param", "type" } } with the status below.

export const ERROR_CODES = {
  invalid_request: 400,
  invalid_file: 400,
  invalid_hyperparameters: 400,
  unsupported_method: 400,
  unsupported_parameter: 400,
  unsupported_resources: 400,
  invalid_grader: 400,
  unsupported_grader: 400,
  invalid_model: 400,
  file_too_large: 413,
  request_header_too_large: 431,
  request_timeout: 408,
  job_too_large: 400,
  prompt_too_large: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  model_not_found: 404,
  file_not_found: 404,
  job_not_found: 404,
  conflict: 409,
  invalid_state: 409,
  file_in_use: 409,
  file_not_ready: 409,
  evaluation_not_found: 404,
  project_not_found: 404,
  api_key_not_found: 404,
  webhook_not_found: 404,
  idempotency_key_in_use: 409,
  idempotency_key_reused: 422,
  webhook_unreachable: 422,
  rate_limited: 429,
  quota_exceeded: 429,
  service_unavailable: 503,
  model_capacity: 503,
  inference_timeout: 504,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class CrucibleError extends Error {
  readonly code: ErrorCode;
  readonly param: string | null;
  readonly status: number;

  constructor(code: ErrorCode, message: string, param: string | null = null) {
    super(message);
    this.name = 'CrucibleError';
    this.code = code;
    this.param = param;
    this.status = ERROR_CODES[code];
  }

  toJSON() {
    return {
      error: {
        code: this.code,
        message: this.message,
        param: this.param,
        type: this.status >= 500 ? 'server_error' : 'invalid_request_error',
      },
    };
  }
}

/** A 429 (or model_capacity's 503) the client may retry after `retryAfter` seconds (sent as Retry-After). */
export class RetryLaterError extends CrucibleError {
  constructor(
    code: 'rate_limited' | 'quota_exceeded' | 'model_capacity',
    message: string,
    readonly retryAfter: number,
    param: string | null = null,
  ) {
    super(code, message, param);
    this.name = 'RetryLaterError';
  }
}

/**
 * A problem of a job's own data or config found by the worker (a file deleted since, a base model
 * that does not load, a config that does not fit the data): the job fails at once with this code
 * and param, and is never retried.
 */
export class JobInputError extends CrucibleError {
  constructor(code: ErrorCode, message: string, param: string | null = null) {
    super(code, message, param);
    this.name = 'JobInputError';
  }
}
