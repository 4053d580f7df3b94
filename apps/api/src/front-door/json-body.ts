// JSON request bodies are read as bytes and checked before they are parsed: invalid UTF-8 is a
// 400 naming the field that holds it (never stored as U+FFFD), and a body nested deeper than
// MAX_JSON_DEPTH is a 400 (the checks that walk a parsed body must never overflow the stack).
// Fastify's own parser (prototype-poisoning protection included) does the parsing.
import { CrucibleError, decodeMarking, decodeUtf8, findString, INVALID_UTF8_MARK, jsonTooDeep, MAX_JSON_DEPTH } from '@crucible/domain';
import type { FastifyInstance } from 'fastify';

export function installJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const text = decodeUtf8(body as Buffer);
    if (text === null) return done(invalidUtf8(body as Buffer), undefined);
    if (jsonTooDeep(text)) {
      return done(new CrucibleError('invalid_request', `the body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`, 'body'), undefined);
    }
    parse(req, text, done);
  });
}

/** The refusal of a body with invalid UTF-8, naming the string that holds it where it parses. */
function invalidUtf8(body: Uint8Array): CrucibleError {
  const marked = decodeMarking(body);
  let at: string | null = null;
  if (!jsonTooDeep(marked)) {
    try {
      at = findString(JSON.parse(marked), (s) => (s.includes(INVALID_UTF8_MARK) ? 'holds bytes that are not valid UTF-8' : null))?.path ?? null;
    } catch {
      // the bad bytes are outside any string: the body as a whole
    }
  }
  return at
    ? new CrucibleError('invalid_request', `${at} holds bytes that are not valid UTF-8`, at)
    : new CrucibleError('invalid_request', 'the body is not valid UTF-8', 'body');
}
