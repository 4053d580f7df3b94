// Completions and chat completions served by a trained model (OpenAI's shapes).
import { Type } from '@sinclair/typebox';
import { Nullable } from './common';

const sampling = {
  model: Type.String(),
  max_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 4096, default: 64 }))),
  temperature: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 2, default: 1 }))),
  top_p: Type.Optional(Nullable(Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 1 }))),
  top_k: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 100000, description: 'Crucible extension. 0 = off.' }))),
  stop: Type.Optional(Nullable(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 })]))),
  seed: Type.Optional(Nullable(Type.Integer())),
  stream: Type.Optional(Nullable(Type.Boolean())),
  n: Type.Optional(Nullable(Type.Literal(1))),
  user: Type.Optional(Type.String()),
};

export const CompletionRequest = Type.Object({ ...sampling, prompt: Type.String() });

export const ChatMessage = Type.Object({
  role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('developer')]),
  content: Type.String(),
});

export const ChatCompletionRequest = Type.Object({
  ...sampling,
  messages: Type.Array(ChatMessage, { minItems: 1 }),
  max_completion_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 4096 }))),
});

const Usage = Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer(), total_tokens: Type.Integer() });
const finish = Type.Union([Type.Literal('stop'), Type.Literal('length')]);

export const CompletionObject = Type.Object({
  id: Type.String(),
  object: Type.Literal('text_completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(Type.Object({ text: Type.String(), index: Type.Integer(), logprobs: Type.Null(), finish_reason: finish })),
  usage: Usage,
});

export const ChatCompletionObject = Type.Object({
  id: Type.String(),
  object: Type.Literal('chat.completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(
    Type.Object({
      index: Type.Integer(),
      message: Type.Object({ role: Type.Literal('assistant'), content: Type.String(), refusal: Type.Null() }),
      logprobs: Type.Null(),
      finish_reason: finish,
    }),
  ),
  usage: Usage,
});

/** The chat template: one "role: content" line per message, then "assistant:" to generate. */
export function renderChat(messages: Array<{ role: string; content: string }>, generationPrompt = true): string {
  const body = messages.map((m) => `${m.role === 'developer' ? 'system' : m.role}: ${m.content}\n`).join('');
  return generationPrompt ? `${body}assistant:` : body;
}
export const CHAT_STOP = '\nuser:';
