// Infrastructure faults: telling a transient error (a dependency that cannot be reached right
// now) from an error of the request or the job, and retrying the transient ones with backoff.
// The error's class is the retry decision: a TransientError is tried again (in place, then as a
// new attempt of the job), anything else is not. Drivers throw untyped errors, so the packages
// that talk to PostgreSQL (db), S3 (storage) and Redis (queue) classify what they cannot reach
// once, at their boundary (guard), into ServiceUnavailableError, which the API answers with 503.
import { CrucibleError } from './errors';

export type Dependency = 'database' | 'queue' | 'storage';

/** A failure another try may not have: a dependency is unreachable for now. */
export class TransientError extends CrucibleError {
  readonly dependency: Dependency;

  constructor(dependency: Dependency, message: string, cause?: unknown) {
    super('service_unavailable', message, null);
    this.name = 'TransientError';
    this.dependency = dependency;
    if (cause !== undefined) this.cause = cause;
  }
}

/** A dependency could not be reached; the message names no host, port or queue internals. */
export class ServiceUnavailableError extends TransientError {
  /** Seconds a client should wait before retrying (the Retry-After header). */
  readonly retryAfter: number;

  constructor(dependency: Dependency, cause?: unknown, retryAfter = 5) {
    super(dependency, `the ${dependency} is unavailable; retry later`, cause);
    this.name = 'ServiceUnavailableError';
    this.retryAfter = retryAfter;
  }
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ESOCKETTIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  // PostgreSQL: admin shutdown, crash shutdown, cannot connect now, too many connections
  '57P01',
  '57P02',
  '57P03',
  '53300',
  // Prisma: cannot reach the database, connection timed out, server closed the connection
  'P1001',
  'P1002',
  'P1017',
  'P2024',
]);

const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /connection is closed/i,
  /connection refused/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /server closed the connection/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  /terminating connection due to administrator command/i,
  /stream isn't writeable/i,
  /max retries per request/i,
  /socket hang up/i,
  /read ECONNRESET/i,
  /DatabaseNotReachable/i,
  /ConnectionClosed/i,
  /SocketTimeout/i,
];

/**
 * The classifier behind guard(): walks a driver's error and its causes, true when it is a
 * connection failure or timeout, not a bug. Code past a dependency's boundary decides by class
 * (instanceof TransientError) instead.
 */
export function isTransientError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    const name = (e as { name?: unknown }).name;
    if (e instanceof TransientError || name === 'ServiceUnavailableError' || name === 'TransientError') return true; // (by name: from a worker thread)
    const o = e as { code?: unknown; name?: unknown; message?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: number }; errors?: unknown[] };
    if (typeof o.code === 'string' && TRANSIENT_CODES.has(o.code)) return true;
    if (o.name === 'TimeoutError' || o.name === 'RequestTimeout' || (o.name === 'DriverAdapterError' && /connect|closed|terminated/i.test(String(o.message))))
      return true;
    if (o.$retryable) return true;
    const status = o.$metadata?.httpStatusCode;
    if (status === 500 || status === 502 || status === 503 || status === 504) return true;
    if (typeof o.message === 'string' && TRANSIENT_MESSAGES.some((r) => r.test(o.message as string))) return true;
    if (Array.isArray(o.errors) && o.errors.some((x) => isTransientError(x))) return true; // AggregateError
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** `err` as a TransientError when it is one or classifies as one (then of `dependency`), else undefined. */
export function asTransient(err: unknown, dependency: Dependency): TransientError | undefined {
  if (err instanceof TransientError) return err;
  return isTransientError(err) ? new ServiceUnavailableError(dependency, err) : undefined;
}

/** Runs `fn`; a transient error becomes ServiceUnavailableError(dependency), others pass through. */
export async function guard<T>(dependency: Dependency, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asTransient(err, dependency) ?? err;
  }
}

export interface RetryOptions {
  /** Give up (and throw the last error) after this long. */
  deadlineMs: number;
  /** First wait; doubles each time up to maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Called before each wait (once per outage is typical: log or record an event). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
}

/** Retries `fn` while it fails with a transient error, with exponential backoff, until the deadline. */
export async function retryTransient<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const end = Date.now() + opts.deadlineMs;
  let delay = opts.initialDelayMs ?? 250;
  const max = opts.maxDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientError(err) || Date.now() + delay > end || opts.signal?.aborted) throw err;
      opts.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(max, delay * 2);
    }
  }
}
