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

export function errorBodyOf(text: string, status: number, statusText = ''): ApiErrorBody {
  try {
    const body = JSON.parse(text) as { error?: Partial<ApiErrorBody> };
    if (body?.error && typeof body.error.code === 'string') {
      return { code: body.error.code, message: String(body.error.message ?? ''), param: body.error.param ?? null };
    }
  } catch {
    // not JSON: fall through
  }
  return { code: `http_${status}`, message: text.slice(0, 500) || statusText || `HTTP ${status}`, param: null };
}

/** Thrown by the wait helpers when their timeout passes first. */
export class CrucibleTimeoutError extends Error {
  override readonly name = 'CrucibleTimeoutError';
}
