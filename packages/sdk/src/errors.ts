// Typed errors: every failed API call throws a CrucibleApiError carrying the HTTP status and the
// API's own error code, message and the request field it concerns.

/** The error body every Crucible answer of 4xx/5xx carries. */
export interface ApiErrorBody {
  code: string;
  message: string;
  param: string | null;
}

export class CrucibleApiError extends Error {
  override readonly name = 'CrucibleApiError';
  /** The API's machine-readable code, e.g. `job_not_found`, `invalid_hyperparameters`. */
  readonly code: string;
  /** The request field the error concerns (dotted path, e.g. `method.pretrain.hyperparameters.max_steps`), or null. */
  readonly param: string | null;

  constructor(
    /** The HTTP status (404, 401, 400, ...). */
    readonly status: number,
    /** The error body as the API sent it. */
    readonly error: ApiErrorBody,
  ) {
    super(`${status} ${error.code}: ${error.message}`);
    this.code = error.code;
    this.param = error.param ?? null;
  }

  /** Reads an error answer (JSON in Crucible's shape, or anything else) into a CrucibleApiError. */
  static async fromResponse(res: Response): Promise<CrucibleApiError> {
    const text = await res.text().catch(() => '');
    return new CrucibleApiError(res.status, errorBodyOf(text, res.status, res.statusText));
  }
}

/** The error body of an answer's text: Crucible's `{ error }` when it is that, else the text itself under `http_<status>`. */
export function errorBodyOf(text: string, status: number, statusText = ''): ApiErrorBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the text is the message
  }
  return errorBodyFrom(body, status, text.slice(0, 500) || statusText);
}

/** The error body of a parsed answer: Crucible's `{ error }`, or `http_<status>` with `fallbackMessage`. */
export function errorBodyFrom(body: unknown, status: number, fallbackMessage = ''): ApiErrorBody {
  const error = (body as { error?: Partial<ApiErrorBody> } | null | undefined)?.error;
  if (error && typeof error.code === 'string') return { code: error.code, message: String(error.message ?? ''), param: error.param ?? null };
  return { code: `http_${status}`, message: fallbackMessage || `HTTP ${status}`, param: null };
}

/** Thrown by the wait helpers when their timeout passes first. */
export class CrucibleTimeoutError extends Error {
  override readonly name = 'CrucibleTimeoutError';
}

/** The client was set up wrong (a missing API key or base URL): thrown by the constructor, before any request. */
export class CrucibleConfigError extends Error {
  override readonly name = 'CrucibleConfigError';
}

/** The API could not be reached (nothing listens at the base URL, DNS, a refused or dropped connection). */
export class CrucibleConnectionError extends Error {
  override readonly name = 'CrucibleConnectionError';

  constructor(
    /** The base URL the client was given. */
    readonly baseUrl: string,
    cause: unknown,
  ) {
    const why = cause instanceof Error ? ((cause.cause as Error | undefined)?.message ?? cause.message) : String(cause);
    super(`cannot reach the Crucible API at ${baseUrl}: ${why}`, { cause });
  }
}
