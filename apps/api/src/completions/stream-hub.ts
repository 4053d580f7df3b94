// Streamed text comes back from workers over Redis pub/sub. One subscriber connection per API
// process carries every stream (a channel each, subscribed while its request lives), so streams
// cost no connection of their own, and a stream whose client left is unsubscribed at once: the
// worker then sees its next piece reach nobody and stops generating.
import type { Redis } from 'ioredis';

type Handler = (message: string) => void;

export class StreamHub {
  private sub: Redis | undefined;
  private readonly handlers = new Map<string, Handler>();

  constructor(private readonly connect: () => Redis) {}

  /** Calls `onMessage` for each message on `channel` until the returned function is called. */
  async listen(channel: string, onMessage: Handler): Promise<() => Promise<void>> {
    const sub = this.connection();
    this.handlers.set(channel, onMessage);
    try {
      await sub.subscribe(channel);
    } catch (err) {
      this.handlers.delete(channel);
      throw err;
    }
    let open = true;
    return async () => {
      if (!open) return;
      open = false;
      this.handlers.delete(channel);
      await sub.unsubscribe(channel).catch(() => {});
    };
  }

  /** Channels subscribed now (tests, metrics). */
  get size(): number {
    return this.handlers.size;
  }

  close(): void {
    this.sub?.disconnect();
    this.sub = undefined;
    this.handlers.clear();
  }

  private connection(): Redis {
    if (!this.sub) {
      const sub = this.connect();
      sub.on('error', () => {}); // reconnects by itself; a stream sees its own errors
      sub.on('message', (channel: string, message: string) => this.handlers.get(channel)?.(message));
      this.sub = sub;
    }
    return this.sub;
  }
}
