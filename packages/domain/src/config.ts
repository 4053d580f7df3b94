// Environment parsing shared by the API and the worker. Each app calls its parser once at boot
// and passes the typed result down; nothing else reads process.env.
import { type ProjectLimits, readProjectLimits } from './limits';

export interface PlatformConfig {
  databaseUrl: string;
  redisUrl: string;
  s3: {
    endpoint?: string;
    region: string;
    bucket: string;
    accessKeyId: string;
    secretAccessKey: string;
  };
  /** Prefix of BullMQ keys and control channels in Redis (lets tests and several deployments share one Redis). */
  queuePrefix: string;
  jobs: JobTimings;
  /** Per-project limits' defaults (see limits.ts); a project's overrides take precedence. */
  limits: ProjectLimits;
}

/** How fast lost work is noticed; shared by the API and the worker (both run the reconciler). */
export interface JobTimings {
  /** JOB_HEARTBEAT_MS: a worker writes its job's heartbeat this often. Default 5 s. */
  heartbeatMs: number;
  /** WORKER_DEAD_AFTER_MS: a job whose heartbeat is this old has lost its worker. Default 30 s. */
  deadAfterMs: number;
  /** RECONCILE_INTERVAL_MS: time between reconciler passes. Default 10 s. */
  reconcileIntervalMs: number;
  /** QUEUED_GRACE_MS: a queued job younger than this is not checked for a queue entry. Default 15 s. */
  queuedGraceMs: number;
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

export class EnvReader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  str(name: string, fallback?: string): string {
    const v = this.env[name];
    if (v !== undefined && v !== '') return v;
    if (fallback === undefined) {
      this.problems.push(`${name} is required`);
      return '';
    }
    return fallback;
  }

  optional(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  int(name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return n;
  }

  /** true/1/yes or false/0/no. */
  bool(name: string, fallback: boolean): boolean {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
    this.problems.push(`${name} must be true or false, got ${JSON.stringify(raw)}`);
    return fallback;
  }

  url(name: string, fallback: string | undefined, protocols: string[]): string {
    const v = fallback === undefined ? this.str(name) : this.str(name, fallback);
    if (!v) return v;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) this.problems.push(`${name} must use ${protocols.join(' or ')}, got ${u.protocol}`);
    } catch {
      this.problems.push(`${name} is not a URL: ${JSON.stringify(v)}`);
    }
    return v;
  }

  done(): void {
    if (this.problems.length) throw new ConfigError(this.problems);
  }
}

export function readPlatformConfig(r: EnvReader): PlatformConfig {
  return {
    databaseUrl: r.url('DATABASE_URL', 'postgresql://root@localhost/crucible?host=/var/run/postgresql', ['postgresql:', 'postgres:']),
    redisUrl: r.url('REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    s3: {
      endpoint: r.optional('S3_ENDPOINT'),
      region: r.str('S3_REGION', 'us-east-1'),
      bucket: r.str('S3_BUCKET', 'crucible'),
      accessKeyId: r.str('S3_ACCESS_KEY_ID', 'S3RVER'),
      secretAccessKey: r.str('S3_SECRET_ACCESS_KEY', 'S3RVER'),
    },
    queuePrefix: r.str('QUEUE_PREFIX', 'crucible'),
    jobs: readJobTimings(r),
    limits: readProjectLimits(r),
  };
}

export function readJobTimings(r: EnvReader): JobTimings {
  const t: JobTimings = {
    heartbeatMs: r.int('JOB_HEARTBEAT_MS', 5_000, 100, 600_000),
    deadAfterMs: r.int('WORKER_DEAD_AFTER_MS', 30_000, 1_000, 3_600_000),
    reconcileIntervalMs: r.int('RECONCILE_INTERVAL_MS', 10_000, 100, 3_600_000),
    queuedGraceMs: r.int('QUEUED_GRACE_MS', 15_000, 0, 3_600_000),
  };
  if (t.deadAfterMs < 3 * t.heartbeatMs) r.problems.push(`WORKER_DEAD_AFTER_MS (${t.deadAfterMs}) must be at least 3 x JOB_HEARTBEAT_MS (${t.heartbeatMs})`);
  return t;
}
