// A multi-worker job's gang: the ranks of one attempt, each a queue entry taken by some worker,
// meet in Redis (one hash per attempt under the queue prefix), wait until all have come, pass the
// same stages together (the data is ready, every trainer is built), then connect through Gloo,
// whose own rendezvous (Gloo's RedisStore) lives under the same key. Nothing here waits forever:
// a gang that does not assemble in time lets its members go (their entries wait and try again),
// and one abandoned by its rank 0 (the job ended, or a rank cannot be reached) sends them home.

import { type GlooGroup, gloo, glooMissing } from '@crucible/collectives';
import { guard } from '@crucible/domain';
import type { Collective } from '@crucible/trainer';
import type { Precision } from '@crucible/training-config';
import type { Redis } from 'ioredis';

export interface GangMember {
  rank: number;
  worker: string;
  /** The address the other ranks reach this one at (WORKER_ADVERTISE_HOST). */
  host: string;
  /** Whether this worker runs bf16 products (the gang trains in bf16 only when all do). */
  bf16: boolean;
}

export interface GangTimes {
  /** How long a member waits for the others to come (GANG_ASSEMBLY_MS). */
  assemblyMs: number;
  /** How long a member waits at a stage for the slowest (loading data and models). */
  stageMs: number;
  /** The bound on Gloo's rendezvous and on each collective (GANG_COLLECTIVE_TIMEOUT_MS). */
  collectiveMs: number;
  /** How often a member beats while it is in the gang (JOB_HEARTBEAT_MS). */
  beatMs: number;
  /** A member waited for at a stage whose beat is this old is lost (WORKER_DEAD_AFTER_MS). */
  deadMs: number;
  pollMs?: number;
}

/** The gang did not assemble in time: the member left it; its entry should wait and try again. */
export class GangTimeout extends Error {
  override readonly name = 'GangTimeout';
}

/** Rank 0 gave the gang up (the job ended or was requeued): the member should go. */
export class GangAbandoned extends Error {
  override readonly name = 'GangAbandoned';
}

/** A rank could not be reached, or was lost mid-run: the attempt goes back to the queue. */
export class RankLost extends Error {
  override readonly name = 'RankLost';
}

const KEY_TTL_S = 24 * 3600;

export class Gang {
  readonly key: string;
  private members: GangMember[] = [];
  private group: GlooGroup | undefined;
  private beat: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    queuePrefix: string,
    readonly jobId: string,
    readonly attempt: number,
    readonly size: number,
    readonly me: GangMember,
    private readonly times: GangTimes,
  ) {
    this.key = `${queuePrefix}:gang:${jobId}:${attempt}`;
  }

  get rank(): number {
    return this.me.rank;
  }

  /** Joins and waits until every rank has; GangTimeout (having left) or GangAbandoned otherwise. */
  async join(): Promise<GangMember[]> {
    await guard('queue', () =>
      this.redis
        .multi()
        .hset(this.key, `member:${this.rank}`, JSON.stringify(this.me))
        .hincrby(this.key, `beat:${this.rank}`, 1)
        .expire(this.key, KEY_TTL_S)
        .exec(),
    );
    // a beat while this member is in the gang: the others waiting for it at a stage notice a dead one
    this.beat = setInterval(() => {
      this.redis.hincrby(this.key, `beat:${this.rank}`, 1).catch(() => {});
    }, this.times.beatMs);
    this.beat.unref();
    try {
      await this.waitFor('member', this.times.assemblyMs);
    } catch (err) {
      if (err instanceof GangTimeout) await this.leave();
      else clearInterval(this.beat);
      throw err;
    }
    const all = await guard('queue', () => this.redis.hgetall(this.key));
    this.members = Array.from({ length: this.size }, (_, r) => JSON.parse(all[`member:${r}`] as string) as GangMember);
    return this.members;
  }

  /** Marks this rank past `stage` and waits for every other rank to be. */
  async stage(stage: string): Promise<void> {
    await guard('queue', () => this.redis.hset(this.key, `${stage}:${this.rank}`, '1'));
    await this.waitFor(stage, this.times.stageMs);
  }

  /** The precision the whole gang can train in: bf16 only when every member runs bf16 products. */
  precision(wanted: Precision): Precision {
    return wanted === 'bf16' && this.members.every((m) => m.bf16) ? 'bf16' : 'float32';
  }

  /** The members as the job records them (after join). */
  ranks(): { rank: number; worker: string; host: string }[] {
    return this.members.map(({ rank, worker, host }) => ({ rank, worker, host }));
  }

  /**
   * The group the trainer is built with, before the ranks connect (a trainer needs only its size
   * and rank then); its collectives go through Gloo once `connect` has run. A failed collective is
   * a RankLost naming the ranks.
   */
  collective(): Collective {
    const lost = (err: unknown): never => {
      throw new RankLost(`rank ${this.rank} lost its link to the other ranks: ${(err as Error).message.split('\n')[0]} (the ranks: ${this.describe()})`);
    };
    const group = (): GlooGroup => {
      if (!this.group) throw new RankLost(`rank ${this.rank} is not connected to the other ranks`);
      return this.group;
    };
    return {
      rank: this.rank,
      size: this.size,
      allreduce: (buf, op) => {
        try {
          return group().allreduce(buf, op);
        } catch (err) {
          return lost(err);
        }
      },
      broadcast: (buf, root) => {
        try {
          return group().broadcast(buf, root);
        } catch (err) {
          return lost(err);
        }
      },
      allreduceAsync: (buf) => {
        let wait: () => void;
        try {
          wait = group().allreduceAsync(buf);
        } catch (err) {
          return lost(err);
        }
        return () => {
          try {
            wait();
          } catch (err) {
            lost(err);
          }
        };
      },
    };
  }

  /** Connects this rank to the others through Gloo (TCP), with the rendezvous in `redisUrl`; RankLost when it cannot. */
  async connect(redisUrl: string): Promise<void> {
    if (!gloo) throw new RankLost(glooMissing ?? 'Gloo is absent');
    const url = new URL(redisUrl);
    if (url.password || url.protocol === 'rediss:' || (url.pathname && url.pathname !== '/' && url.pathname !== '/0')) {
      throw new RankLost("Gloo's rendezvous speaks plain Redis without a password, TLS or database number, and REDIS_URL has one of them");
    }
    const prefix = `${this.key}:gloo`;
    try {
      this.group = gloo.connect({
        rank: this.rank,
        size: this.size,
        host: this.me.host,
        prefix,
        redisHost: url.hostname,
        redisPort: Number(url.port || 6379),
        timeoutMs: this.times.collectiveMs,
      });
    } catch (err) {
      throw new RankLost(`rank ${this.rank} (${this.me.worker}) ${(err as Error).message.split('\n')[0]}; the ranks: ${this.describe()}`);
    }
    // Gloo's rendezvous keys have done their work: they expire with the gang's
    if (this.rank === 0) {
      const keys = await this.redis.keys(`${prefix}*`);
      if (keys.length) await keys.reduce((m, k) => m.expire(k, KEY_TTL_S), this.redis.multi()).exec();
    }
  }

  /** "0 worker-a at 10.0.0.1, 1 worker-b at 10.0.0.2" */
  describe(): string {
    return this.members.map((m) => `${m.rank} ${m.worker} at ${m.host}`).join(', ') || `rank ${this.rank} at ${this.me.host}`;
  }

  /** Gives the gang up (rank 0, or a rank that cannot take part): every waiting member goes. */
  async abandon(reason: string): Promise<void> {
    await guard('queue', () => this.redis.multi().hset(this.key, 'abandoned', reason).expire(this.key, KEY_TTL_S).exec());
  }

  /** Leaves before the gang assembled (the entry waits and tries again). */
  async leave(): Promise<void> {
    clearInterval(this.beat);
    await guard('queue', () => this.redis.hdel(this.key, `member:${this.rank}`, `beat:${this.rank}`));
  }

  /** Stops beating and closes the Gloo connections (the others' next collective fails at once). */
  close(): void {
    clearInterval(this.beat);
    this.group?.close();
    this.group = undefined;
  }

  private async waitFor(stage: string, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    const beats = new Map<number, { beat: string | undefined; at: number }>(); // as last seen changing, by this clock
    for (;;) {
      const all = await guard('queue', () => this.redis.hgetall(this.key));
      if (all.abandoned !== undefined) throw new GangAbandoned(all.abandoned);
      const missing = Array.from({ length: this.size }, (_, r) => r).filter((r) => all[`${stage}:${r}`] === undefined);
      if (missing.length === 0) return;
      // a member that joined and stopped beating is lost (its worker died): no need to wait it out
      if (stage !== 'member') {
        for (const r of missing) {
          const beat = all[`beat:${r}`];
          const seen = beats.get(r);
          if (!seen || seen.beat !== beat) beats.set(r, { beat, at: Date.now() });
          else if (Date.now() - seen.at > this.times.deadMs) {
            const m = all[`member:${r}`] ? (JSON.parse(all[`member:${r}`] as string) as GangMember) : undefined;
            throw new RankLost(
              `rank ${r}${m ? ` (${m.worker} at ${m.host})` : ''} stopped beating for ${Math.round(this.times.deadMs / 1000)} s while the ranks waited at ${stage}`,
            );
          }
        }
      }
      if (Date.now() >= until) {
        throw new GangTimeout(`rank(s) ${missing.join(', ')} of ${this.size} did not reach ${stage} within ${Math.round(timeoutMs / 1000)} s`);
      }
      await new Promise((r) => setTimeout(r, this.times.pollMs ?? 200));
    }
  }
}

/** Counts a gang's failed rendezvous over the attempts of one job (reset when one connects). */
export async function countRendezvousFailure(redis: Redis, queuePrefix: string, jobId: string): Promise<number> {
  const key = `${queuePrefix}:gang:${jobId}:failures`;
  const [[, n]] = (await redis.multi().incr(key).expire(key, KEY_TTL_S).exec()) as [[unknown, number]];
  return n;
}

export async function clearRendezvousFailures(redis: Redis, queuePrefix: string, jobId: string): Promise<void> {
  await redis.del(`${queuePrefix}:gang:${jobId}:failures`);
}
