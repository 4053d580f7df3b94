// A request body that stops arriving is cut off: a client that sends headers and part of a body,
// or drips a byte now and then, would otherwise hold a connection (and whatever its handler
// reserved) for as long as it likes. Progress is read from the socket's byte count, so the body
// stream itself is left to its parser; while the handler is not reading (a paused stream, bytes
// waiting in its buffer) the wait is the server's, not the client's, and does not count; the answer is a 408 in Crucible's shape, and the handler
// sees its request end early and releases what it reserved.
import { CrucibleError } from '@crucible/domain';
import type { FastifyInstance } from 'fastify';
import { endWithError } from './client-errors';

export function installBodyIdleTimeout(app: FastifyInstance, idleMs: number): void {
  app.addHook('onRequest', (req, reply, done) => {
    const raw = req.raw;
    const length = raw.headers['content-length'];
    const hasBody = length !== undefined ? Number(length) > 0 : raw.headers['transfer-encoding'] !== undefined;
    if (!hasBody || raw.complete) return done();
    const socket = raw.socket;
    let seen = socket.bytesRead;
    const timer = setInterval(() => {
      if (raw.complete || socket.destroyed) return clearInterval(timer);
      // progress, or the server's own backpressure (the handler is not reading): not the client's stall
      if (socket.bytesRead > seen || raw.isPaused() || raw.readableLength > 0) {
        seen = socket.bytesRead;
        return;
      }
      clearInterval(timer);
      req.log.warn({ bytes_read: seen }, `request body idle for ${idleMs} ms: cut off`);
      if (!reply.raw.headersSent) {
        endWithError(socket, 408, new CrucibleError('request_timeout', `the request body made no progress for ${idleMs} ms`, 'body'), {
          'x-request-id': req.id,
        });
      }
      // the socket goes once the answer is out; the body stream then ends in an error (its handler cleans up)
      setTimeout(() => socket.destroy(), 1000).unref();
    }, idleMs);
    timer.unref();
    raw.once('end', () => clearInterval(timer));
    raw.once('close', () => clearInterval(timer));
    done();
  });
}
