// Redis connections. Two kinds: `blocking` for BullMQ workers and event listeners (they wait on
// Redis and must retry forever), and `command` for everything that answers a request (a command
// issued while Redis is unreachable fails after one reconnection attempt instead of waiting for
// Redis to come back, so the API answers 503 rather than hang).
import { Redis } from 'ioredis';

export type ConnectionRole = 'blocking' | 'command';

export function redisConnection(url: string, role: ConnectionRole): Redis {
  const c = new Redis(url, {
    maxRetriesPerRequest: role === 'blocking' ? null : 1,
    connectTimeout: 5000,
    // reconnect forever, at most every 2 s
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  // ioredis reports connection errors as 'error' events; the callers see failed commands instead
  c.on('error', () => {});
  return c;
}
