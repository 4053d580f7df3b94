// Gloo groups for data-parallel training; `gloo` is null where the addon was not built (Debian's
// libgloo-dev absent), and `glooMissing` then says why. CRUCIBLE_NO_GLOO=1 behaves as if absent.
let addon = null;
let glooMissing = null;
if (process.env.CRUCIBLE_NO_GLOO === '1') glooMissing = 'Gloo is turned off on this worker (CRUCIBLE_NO_GLOO=1)';
else {
  try {
    addon = require('./build/Release/crucible_gloo.node');
  } catch (err) {
    glooMissing = `Gloo is not installed on this worker (apt-get install libgloo-dev, then npm rebuild @crucible/collectives): ${String(err.message).split('\n')[0]}`;
  }
}

const OPS = { sum: 0, min: 1, max: 2 };

/** A connected group of ranks; every call blocks until all ranks made it, or fails after timeoutMs. */
class GlooGroup {
  constructor(handle, rank, size) {
    this.handle = handle;
    this.rank = rank;
    this.size = size;
  }

  /** Connects rank `rank` of `size` (every rank calls this with the same prefix). */
  static connect(o) {
    if (!addon) throw new Error(glooMissing);
    if (!(Number.isInteger(o.rank) && Number.isInteger(o.size) && o.rank >= 0 && o.rank < o.size)) throw new RangeError('collectives: 0 <= rank < size');
    o = { redisHost: '127.0.0.1', redisPort: 6379, timeoutMs: 30_000, ...o };
    let handle;
    try {
      handle = addon.connect(o);
    } catch (err) {
      const where =
        err.code === 'device'
          ? `cannot listen on ${o.host}`
          : err.code === 'rendezvous'
            ? `cannot reach Redis at ${o.redisHost}:${o.redisPort}`
            : `rank ${o.rank} (${o.host}) could not connect to every other rank of ${o.size}`;
      const e = new Error(`${where}: ${err.message.split('\n')[0]}`);
      e.stage = err.code;
      throw e;
    }
    return new GlooGroup(handle, o.rank, o.size);
  }

  allreduce(buf, op = 'sum') {
    addon.allreduce(this.handle, buf, OPS[op] ?? 0);
    return buf;
  }

  /**
   * Queues a sum allreduce of `buf` in place on the group's own thread (queued ones run in order)
   * and returns a function that waits for it, throwing its error; JavaScript runs on meanwhile.
   */
  allreduceAsync(buf) {
    const ticket = addon.enqueue(this.handle, buf);
    return () => addon.wait(this.handle, ticket);
  }

  broadcast(buf, root = 0) {
    addon.broadcast(this.handle, buf, root);
    return buf;
  }

  barrier() {
    addon.barrier(this.handle);
  }

  close() {
    addon.close(this.handle);
  }
}

exports.gloo = addon ? GlooGroup : null;
exports.glooMissing = glooMissing;
exports.GlooGroup = GlooGroup;
