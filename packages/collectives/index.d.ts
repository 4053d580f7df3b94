export interface ConnectOptions {
  rank: number;
  size: number;
  /** The address this rank listens on and that the others dial (WORKER_ADVERTISE_HOST). */
  host: string;
  /** Rendezvous keys go under this prefix (one per group: the job, attempt and round). */
  prefix: string;
  redisHost?: string;
  redisPort?: number;
  /** Bound on the rendezvous and on every collective (default 30,000). */
  timeoutMs?: number;
}

/** A connected group of ranks: every call blocks until all ranks made it, or throws after the timeout. */
export declare class GlooGroup {
  readonly rank: number;
  readonly size: number;
  /** Throws an Error whose `stage` is 'device' (cannot listen on host), 'rendezvous' (Redis) or 'connect' (a peer). */
  static connect(o: ConnectOptions): GlooGroup;
  /** Reduces `buf` over the ranks in place. */
  allreduce<T extends Float32Array | Float64Array>(buf: T, op?: 'sum' | 'min' | 'max'): T;
  /**
   * Queues a sum allreduce of `buf` in place, run on the group's own thread in the order queued
   * (the synchronous calls wait for the queue first); returns a function that waits for it and
   * throws its error. `buf` must not be touched until then.
   */
  allreduceAsync(buf: Float32Array): () => void;
  /** Copies root's `buf` into every rank's. */
  broadcast<T extends Float32Array | Float64Array>(buf: T, root?: number): T;
  barrier(): void;
  /** Drops the connections (the other ranks' next call fails at once). */
  close(): void;
}

/** GlooGroup where the addon was built, else null. */
export declare const gloo: typeof GlooGroup | null;
/** Why Gloo is absent, or null. */
export declare const glooMissing: string | null;
