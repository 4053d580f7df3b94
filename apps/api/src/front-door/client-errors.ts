// Refusals made by Node's HTTP parser before Fastify sees a request (headers too large, a
// malformed request line or header, Content-Length with Transfer-Encoding, a bad chunk size, a
// request that took too long) answered in Crucible's error shape instead of Node's bare text.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { CrucibleError } from '@crucible/domain';

interface ClientError extends Error {
  code?: string;
}

/** The status and message for a parser-level refusal. */
export function clientErrorAnswer(err: ClientError): { status: number; error: CrucibleError } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        error: new CrucibleError(
          'request_header_too_large',
          'the request line and headers are larger than the server accepts (long URLs and query strings count)',
          'headers',
        ),
      };
    case 'HPE_URI_TOO_LONG':
      return { status: 414, error: new CrucibleError('request_header_too_large', 'the URL is longer than the server accepts', 'url') };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return { status: 408, error: new CrucibleError('request_timeout', 'the request was not received in time', null) };
    default:
      return {
        status: 400,
        error: new CrucibleError('invalid_request', `the request is not well-formed HTTP/1.1 (${err.code ?? 'parse error'})`, null),
      };
  }
}

/** Fastify's clientErrorHandler: writes the answer and closes the connection. */
export function answerClientError(err: ClientError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const { status, error } = clientErrorAnswer(err);
  endWithError(socket, status, error);
}

/** Writes a whole HTTP answer in Crucible's error shape straight to the socket (no framework reply exists or can be used), then closes it. */
export function endWithError(socket: Socket, status: number, error: CrucibleError, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(error.toJSON());
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}
