// An answer given before the request body was read to its end (a refused upload, a bad archive):
// the rest of the body is read and dropped, up to a bound, so that the client, still sending,
// receives the answer instead of a connection reset; then the connection closes. A client that
// keeps sending past the bound is cut off.
import type { FastifyInstance } from 'fastify';

/** How much of an unwanted body is read and dropped before the connection is cut. */
export const DRAIN_LIMIT_BYTES = 64 * 2 ** 20;

export function installUnreadBodyDrain(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply) => {
    const raw = req.raw;
    if (raw.complete || raw.destroyed) return;
    reply.header('connection', 'close');
    raw.unpipe(); // from the multipart parser, which no longer wants it
    let dropped = 0;
    const cut = () => {
      raw.removeListener('data', count);
      // after the answer has gone out
      if (reply.raw.writableFinished) raw.socket?.destroy();
      else reply.raw.once('finish', () => raw.socket?.destroy());
    };
    const count = (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > DRAIN_LIMIT_BYTES) cut();
    };
    raw.on('data', count);
    raw.on('error', () => {});
    raw.resume();
  });
}
