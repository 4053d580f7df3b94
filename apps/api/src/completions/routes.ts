// /v1/completions, /v1/chat/completions (non-streaming and streaming: SSE chunks + [DONE]),
// /v1/embeddings and /v1/fill_mask.
import {
  ChatCompletionObject,
  ChatCompletionRequest,
  CompletionObject,
  CompletionRequest,
  CrucibleError,
  EmbeddingList,
  EmbeddingRequest,
  type EmbeddingResult,
  FillMaskList,
  FillMaskRequest,
  type FillMaskResult,
  type GenerationResult,
  type TokenLogprobResult,
} from '@crucible/domain';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import {
  ClientGoneError,
  chatCompletionId,
  completionId,
  embeddingPayload,
  fillMaskPayload,
  generationPayload,
  type InferenceOptions,
  renderChat,
  runInference,
  streamInference,
} from './service';

/**
 * A Server-Sent Events reply whose status line waits for the first generated piece (or the
 * result): events sent before then (a chat stream's role chunks, an echoed prompt) wait with it.
 * A request that fails before any text, say with 503 model_capacity, is then answered as an
 * ordinary error with its status and Retry-After, not as an event of a 200 stream.
 */
function sse(reply: FastifyReply) {
  const waiting: string[] = [];
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    for (const line of waiting) reply.raw.write(line);
    waiting.length = 0;
  };
  return {
    /** Queues an event until the stream starts, or writes it. */
    send: (obj: unknown) => {
      const line = `data: ${JSON.stringify(obj)}\n\n`;
      if (started) reply.raw.write(line);
      else waiting.push(line);
    },
    /** Starts the stream (if it has not) and writes the event. */
    piece(obj: unknown) {
      start();
      this.send(obj);
    },
    end: () => {
      start();
      reply.raw.end('data: [DONE]\n\n');
    },
    started: () => started,
  };
}

/**
 * A failure of a stream: before it started, rethrown (the error handler answers with its status);
 * after, its last event (Crucible's own message; no internals); nothing when the client left.
 */
function streamError(out: ReturnType<typeof sse>, err: unknown): void {
  if (!out.started()) throw err;
  if (err instanceof ClientGoneError) return;
  const e = err instanceof CrucibleError ? err : new CrucibleError('internal_error', 'internal error', null);
  out.send(e.toJSON());
}

/** The project's inference cap, and a signal that aborts when the client closes the connection before its answer is out. */
function inflight(req: FastifyRequest, reply: FastifyReply): InferenceOptions {
  const c = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) c.abort();
  });
  return { cap: req.actor.limits.maxConcurrentInference, signal: c.signal };
}

/** OpenAI's usage: the prompt once, and the tokens of every choice. */
function usage(r: GenerationResult) {
  const completion = r.choices.reduce((s, c) => s + c.completionTokens, 0);
  return { prompt_tokens: r.promptTokens, completion_tokens: completion, total_tokens: r.promptTokens + completion };
}

/** OpenAI's legacy completions logprobs: parallel arrays over the returned text's tokens. */
function legacyLogprobs(tokens: TokenLogprobResult[]) {
  let offset = 0;
  const text_offset: number[] = [];
  for (const t of tokens) {
    text_offset.push(offset);
    offset += t.token.length;
  }
  return {
    tokens: tokens.map((t) => t.token),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.map((t) => (t.logprob === null ? null : Object.fromEntries(t.top.map((a) => [a.token, a.logprob])))),
    text_offset,
  };
}

function chatLogprobs(tokens: TokenLogprobResult[]) {
  return {
    content: tokens.map((t) => ({
      token: t.token,
      logprob: t.logprob as number,
      bytes: t.bytes,
      top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes })),
    })),
    refusal: null,
  };
}

function inputs(v: string | string[]): string[] {
  return Array.isArray(v) ? v : [v];
}

export const completionRoutes =
  (deps: Deps, cfg: ApiConfig): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/completions',
      { schema: { operationId: 'createCompletion', tags: ['completions'], body: CompletionRequest, response: { 200: CompletionObject } } },
      async (req, reply) => {
        const body = req.body;
        const echo = body.echo ?? false;
        const payload = await generationPayload(deps, req.actor, body, body.prompt, { chat: false, logprobs: body.logprobs ?? null, echo });
        const id = completionId();
        const created = Math.floor(Date.now() / 1000);
        const chunk = (index: number, text: string, finish: string | null) => ({
          id,
          object: 'text_completion' as const,
          created,
          model: body.model,
          choices: [{ text, index, logprobs: null, finish_reason: finish }],
        });
        if (!body.stream) {
          const r = await runInference<GenerationResult>(deps, payload, cfg.inferenceTimeoutMs, 'prompt', inflight(req, reply));
          return {
            id,
            object: 'text_completion' as const,
            created,
            model: body.model,
            choices: r.choices.map((c, index) => ({
              text: echo ? body.prompt + c.text : c.text,
              index,
              logprobs: c.logprobs ? legacyLogprobs([...(echo ? (r.promptLogprobs ?? []) : []), ...c.logprobs]) : null,
              finish_reason: c.finishReason,
            })),
            usage: usage(r),
          };
        }
        if (body.logprobs != null) throw new CrucibleError('unsupported_parameter', 'logprobs is not available with stream: true', 'logprobs');
        const out = sse(reply);
        try {
          if (echo) for (let i = 0; i < payload.n; i++) out.send(chunk(i, body.prompt, null));
          const r = await streamInference<GenerationResult>(
            deps,
            payload,
            cfg.inferenceTimeoutMs,
            (i, t) => out.piece(chunk(i, t, null)),
            inflight(req, reply),
          );
          r.choices.forEach((c, i) => {
            out.send(chunk(i, '', c.finishReason));
          });
        } catch (err) {
          streamError(out, err);
        }
        out.end();
      },
    );

    app.post(
      '/chat/completions',
      { schema: { operationId: 'createChatCompletion', tags: ['chat'], body: ChatCompletionRequest, response: { 200: ChatCompletionObject } } },
      async (req, reply) => {
        const body = req.body;
        if (body.top_logprobs != null && !body.logprobs) throw new CrucibleError('invalid_request', 'top_logprobs needs logprobs: true', 'top_logprobs');
        const payload = await generationPayload(
          deps,
          req.actor,
          { ...body, max_tokens: body.max_completion_tokens ?? body.max_tokens },
          renderChat(body.messages),
          { chat: true, logprobs: body.logprobs ? (body.top_logprobs ?? 0) : null, echo: false, messages: body.messages },
        );
        const id = chatCompletionId();
        const created = Math.floor(Date.now() / 1000);
        if (!body.stream) {
          const r = await runInference<GenerationResult>(deps, payload, cfg.inferenceTimeoutMs, 'messages', inflight(req, reply));
          return {
            id,
            object: 'chat.completion' as const,
            created,
            model: body.model,
            choices: r.choices.map((c, index) => ({
              index,
              message: { role: 'assistant' as const, content: c.text, refusal: null },
              logprobs: c.logprobs ? chatLogprobs(c.logprobs) : null,
              finish_reason: c.finishReason,
            })),
            usage: usage(r),
          };
        }
        if (body.logprobs) throw new CrucibleError('unsupported_parameter', 'logprobs is not available with stream: true', 'logprobs');
        const out = sse(reply);
        const chunk = (index: number, delta: Record<string, string>, finish: string | null) => ({
          id,
          object: 'chat.completion.chunk',
          created,
          model: body.model,
          choices: [{ index, delta, logprobs: null, finish_reason: finish }],
        });
        for (let i = 0; i < payload.n; i++) out.send(chunk(i, { role: 'assistant', content: '' }, null));
        try {
          const r = await streamInference<GenerationResult>(
            deps,
            payload,
            cfg.inferenceTimeoutMs,
            (i, t) => out.piece(chunk(i, { content: t }, null)),
            inflight(req, reply),
          );
          r.choices.forEach((c, i) => {
            out.send(chunk(i, {}, c.finishReason));
          });
        } catch (err) {
          streamError(out, err);
        }
        out.end();
      },
    );

    app.post(
      '/embeddings',
      { schema: { operationId: 'createEmbedding', tags: ['embeddings'], body: EmbeddingRequest, response: { 200: EmbeddingList } } },
      async (req, reply) => {
        const body = req.body;
        const list = inputs(body.input);
        const payload = await embeddingPayload(deps, req.actor, body.model, list, body.pooling ?? 'mean');
        const r = await runInference<EmbeddingResult>(deps, payload, cfg.inferenceTimeoutMs, 'input', inflight(req, reply));
        if (body.dimensions !== undefined && body.dimensions !== r.vectors[0]?.length) {
          throw new CrucibleError('unsupported_parameter', `dimensions: this model's embeddings have ${r.vectors[0]?.length} dimensions`, 'dimensions');
        }
        const encode = (v: number[]) => (body.encoding_format === 'base64' ? Buffer.from(Float32Array.from(v).buffer).toString('base64') : v);
        return {
          object: 'list' as const,
          data: r.vectors.map((v, index) => ({ object: 'embedding' as const, index, embedding: encode(v) })),
          model: body.model,
          usage: { prompt_tokens: r.tokens, total_tokens: r.tokens },
        };
      },
    );

    app.post(
      '/fill_mask',
      { schema: { operationId: 'createFillMask', tags: ['embeddings'], body: FillMaskRequest, response: { 200: FillMaskList } } },
      async (req, reply) => {
        const body = req.body;
        const payload = await fillMaskPayload(deps, req.actor, body.model, inputs(body.input), body.top_k ?? 5);
        const r = await runInference<FillMaskResult>(deps, payload, cfg.inferenceTimeoutMs, 'input', inflight(req, reply));
        return {
          object: 'list' as const,
          model: body.model,
          data: r.results.map((masks, index) => ({
            index,
            masks: masks.map((m) => ({ position: m.position, candidates: m.candidates.map((c) => ({ token: c.token, token_id: c.tokenId, score: c.score })) })),
          })),
          usage: { prompt_tokens: r.tokens, total_tokens: r.tokens },
        };
      },
    );
  };
