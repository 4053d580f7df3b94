// Bearer-key authentication: every /v1 request resolves to the project that owns its key, with
// the key's scopes. Keys are looked up by the sha256 of the secret and cached in the process for
// KEY_CACHE_TTL_MS; a revocation evicts the key here at once and, over Redis pub/sub, in every
// other API process (a process whose subscription drops clears its whole cache when it is back).
import { createHash } from 'node:crypto';
import type { Store } from '@crucible/db';
import { CrucibleError, effectiveLimits, ID_PREFIX, type KeyScope, type LimitOverrides, newApiKeySecret, newId, type ProjectLimits } from '@crucible/domain';
import type { Redis } from 'ioredis';

export interface Actor {
  projectId: string;
  keyId: string;
  scopes: readonly KeyScope[];
  /** The project's limits in force (its overrides over the server's defaults). */
  limits: ProjectLimits;
}

/** What a project's first key holds: everything but `operator`, which only the server operator grants. */
export const ALL_SCOPES: KeyScope[] = ['read', 'write', 'admin'];

/** `operator` includes `admin`, which includes `write`, which includes `read`. */
const RANK: Record<KeyScope, number> = { read: 0, write: 1, admin: 2, operator: 3 };

export function hasScope(actor: Pick<Actor, 'scopes'>, needed: KeyScope): boolean {
  return actor.scopes.some((s) => RANK[s] >= RANK[needed]);
}

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Redis channel on which revocations (a key's hash) and `*` (forget everything) are announced. */
export const keyEventsChannel = (prefix: string) => `${prefix}:keys:revoked`;

interface Cached {
  actor: Actor | null;
  /** Why there is no actor: the message a refused key gets. */
  refusal?: string;
  expires: number;
}

const MAX_CACHED = 50_000;
/** last_used_at is written at most this often per key. */
const TOUCH_EVERY_MS = 60_000;

export class KeyAuthenticator {
  private readonly cache = new Map<string, Cached>();
  private readonly touched = new Map<string, number>();
  private subscriber: Redis | undefined;

  constructor(
    private readonly store: Store,
    private readonly defaults: ProjectLimits,
    private readonly opts: { ttlMs: number; channel: string; subscribe?: () => Redis; publisher?: Redis },
  ) {}

  /** Listens for revocations from other processes. */
  async start(): Promise<void> {
    if (!this.opts.subscribe || this.subscriber) return;
    const sub = this.opts.subscribe();
    this.subscriber = sub;
    sub.on('error', () => {});
    sub.on('message', (_channel, message: string) => (message === '*' ? this.cache.clear() : this.cache.delete(message)));
    // while unsubscribed, revocations may have been missed
    sub.on('ready', () => this.cache.clear());
    await sub.subscribe(this.opts.channel).catch(() => {});
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  /** The actor of a key this process has cached as valid (no lookup, no Redis), else undefined. */
  cached(header: string | undefined): Actor | undefined {
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (!m) return undefined;
    const hit = this.cache.get(hashKey(m[1] as string));
    if (!hit?.actor || hit.expires <= Date.now()) return undefined;
    this.touch(hit.actor.keyId, Date.now());
    return hit.actor;
  }

  async authenticate(header: string | undefined): Promise<Actor> {
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (!m) throw new CrucibleError('unauthorized', 'missing API key: send Authorization: Bearer <key>', 'authorization');
    const hash = hashKey(m[1] as string);
    const now = Date.now();
    let hit = this.cache.get(hash);
    if (!hit || hit.expires <= now) {
      hit = { ...(await this.lookup(hash)), expires: now + this.opts.ttlMs };
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.cache.set(hash, hit);
    }
    if (!hit.actor) throw new CrucibleError('unauthorized', hit.refusal ?? 'invalid API key', 'authorization');
    this.touch(hit.actor.keyId, now);
    return hit.actor;
  }

  /** Forgets a key here and in every API process (after a revocation, or `*` after a limits change). */
  async forget(hash: string | '*'): Promise<void> {
    if (hash === '*') this.cache.clear();
    else this.cache.delete(hash);
    await this.opts.publisher?.publish(this.opts.channel, hash).catch(() => {});
  }

  private async lookup(hash: string): Promise<{ actor: Actor | null; refusal?: string }> {
    const key = await this.store.projects.keyByHash(hash);
    if (!key) return { actor: null };
    // a revoked key is told so (and when), so that a client can sign its user out with the reason
    if (key.revokedAt) return { actor: null, refusal: `this API key (${key.prefix}…) was revoked at ${key.revokedAt.toISOString()}` };
    const project = await this.store.projects.get(key.projectId);
    return {
      actor: {
        projectId: key.projectId,
        keyId: key.id,
        scopes: key.scopes,
        limits: effectiveLimits(this.defaults, project?.limits as LimitOverrides | null),
      },
    };
  }

  private touch(keyId: string, now: number): void {
    const last = this.touched.get(keyId) ?? 0;
    if (now - last < TOUCH_EVERY_MS) return;
    this.touched.set(keyId, now);
    void this.store.projects.touchKeys([keyId], new Date(now)).catch(() => this.touched.delete(keyId));
  }
}

export interface NewSecretKey {
  keyId: string;
  secret: string;
  hash: string;
  prefix: string;
}

export function newSecretKey(): NewSecretKey {
  const secret = newApiKeySecret();
  return { keyId: newId(ID_PREFIX.apiKey), secret, hash: hashKey(secret), prefix: secret.slice(0, 16) };
}

/** Creates a project and a key for it (all scopes unless told); the secret is returned once and only its hash is stored. */
export async function createProjectWithKey(
  store: Store,
  name: string,
  scopes: KeyScope[] = ALL_SCOPES,
): Promise<{ projectId: string; keyId: string; secret: string }> {
  const k = newSecretKey();
  const projectId = newId(ID_PREFIX.project);
  await store.projects.createWithKey({ projectId, name, key: { keyId: k.keyId, keyHash: k.hash, keyPrefix: k.prefix, name: 'default', scopes } });
  return { projectId, keyId: k.keyId, secret: k.secret };
}
