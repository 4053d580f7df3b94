// /v1/completions and /v1/chat/completions, non-streaming and streaming (SSE chunks + [DONE]).
import { ChatCompletionObject, ChatCompletionRequest, CompletionObject, CompletionRequest } from '@crucible/domain';
import type { Static } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { CHAT_STOP, chatCompletionId, completionId, inferencePayload, renderChat, runInference, streamInference } from './service';

function sse(reply: FastifyReply) {
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  return {
    send: (obj: unknown) => reply.raw.write(`data: ${JSON.stringify(obj)}\n\n`),
    end: () => reply.raw.end('data: [DONE]\n\n'),
  };
}

export const completionRoutes =
  (deps: Deps, cfg: ApiConfig): FastifyPluginAsync =>
  async (app) => {
    const usage = (p: number, c: number) => ({ prompt_tokens: p, completion_tokens: c, total_tokens: p + c });

    app.post(
      '/completions',
      { schema: { operationId: 'createCompletion', tags: ['completions'], body: CompletionRequest, response: { 200: CompletionObject } } },
      async (req, reply) => {
        const body = req.body as Static<typeof CompletionRequest>;
        const payload = await inferencePayload(deps, req.actor, body, body.prompt);
        const id = completionId();
        const created = Math.floor(Date.now() / 1000);
        const chunk = (text: string, finish: string | null) => ({
          id,
          object: 'text_completion',
          created,
          model: body.model,
          choices: [{ text, index: 0, logprobs: null, finish_reason: finish }],
        });
        if (!body.stream) {
          const r = await runInference(deps, payload, cfg.inferenceTimeoutMs);
          return { ...chunk(r.text, r.finishReason), usage: usage(r.promptTokens, r.completionTokens) };
        }
        const out = sse(reply);
        try {
          const r = await streamInference(deps, payload, cfg.inferenceTimeoutMs, (t) => out.send(chunk(t, null)));
          out.send(chunk('', r.finishReason));
        } catch (err) {
          out.send({ error: { code: (err as { code?: string }).code ?? 'internal_error', message: (err as Error).message } });
        }
        out.end();
      },
    );

    app.post(
      '/chat/completions',
      { schema: { operationId: 'createChatCompletion', tags: ['chat'], body: ChatCompletionRequest, response: { 200: ChatCompletionObject } } },
      async (req, reply) => {
        const body = req.body as Static<typeof ChatCompletionRequest>;
        const payload = await inferencePayload(
          deps,
          req.actor,
          { ...body, max_tokens: body.max_completion_tokens ?? body.max_tokens },
          renderChat(body.messages),
          [CHAT_STOP],
        );
        const id = chatCompletionId();
        const created = Math.floor(Date.now() / 1000);
        if (!body.stream) {
          const r = await runInference(deps, payload, cfg.inferenceTimeoutMs);
          return {
            id,
            object: 'chat.completion',
            created,
            model: body.model,
            choices: [{ index: 0, message: { role: 'assistant', content: r.text.trim(), refusal: null }, logprobs: null, finish_reason: r.finishReason }],
            usage: usage(r.promptTokens, r.completionTokens),
          };
        }
        const out = sse(reply);
        const chunk = (delta: Record<string, string>, finish: string | null) => ({
          id,
          object: 'chat.completion.chunk',
          created,
          model: body.model,
          choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        });
        out.send(chunk({ role: 'assistant', content: '' }, null));
        try {
          const r = await streamInference(deps, payload, cfg.inferenceTimeoutMs, (t) => out.send(chunk({ content: t }, null)));
          out.send(chunk({}, r.finishReason));
        } catch (err) {
          out.send({ error: { code: (err as { code?: string }).code ?? 'internal_error', message: (err as Error).message } });
        }
        out.end();
      },
    );
  };
