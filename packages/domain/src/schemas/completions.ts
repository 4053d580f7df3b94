// Completions, chat completions, embeddings and fill-mask served by a trained model (OpenAI's
// shapes where OpenAI has one). Every request schema is closed: a parameter Crucible does not
// implement is refused with a 400 that names it, never ignored.
import { Type } from '@sinclair/typebox';
import { Nullable } from './common';

export const MAX_CHOICES = 8;
export const MAX_LOGPROBS = 20;

const sampling = {
  model: Type.String({ minLength: 1, maxLength: 256 }),
  max_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 4096, default: 64 }))),
  temperature: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 2, default: 1, description: '0 is greedy.' }))),
  top_p: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'Nucleus sampling; 0 keeps only the most likely token.' }))),
  top_k: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 100000, description: 'Crucible extension. 0 = off.' }))),
  stop: Type.Optional(Nullable(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 })]))),
  seed: Type.Optional(Nullable(Type.Integer({ description: 'Choice i samples with seed + i.' }))),
  stream: Type.Optional(Nullable(Type.Boolean())),
  n: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: MAX_CHOICES, default: 1, description: 'Choices to generate for the prompt.' }))),
  user: Type.Optional(Type.String({ maxLength: 256 })),
  // OpenAI parameters Crucible does not implement: accepted only at their neutral value
  presence_penalty: Type.Optional(Nullable(Type.Number({ description: 'Not implemented: only 0 is accepted.' }))),
  frequency_penalty: Type.Optional(Nullable(Type.Number({ description: 'Not implemented: only 0 is accepted.' }))),
  logit_bias: Type.Optional(Nullable(Type.Record(Type.String(), Type.Number(), { description: 'Not implemented: only {} is accepted.' }))),
  stream_options: Type.Optional(Nullable(Type.Object({ include_usage: Type.Optional(Type.Boolean()) }))),
};

export const CompletionRequest = Type.Object(
  {
    ...sampling,
    prompt: Type.String(),
    logprobs: Type.Optional(
      Nullable(
        Type.Integer({
          minimum: 0,
          maximum: MAX_LOGPROBS,
          description: 'Log-probabilities of each generated token and of this many most likely alternatives (OpenAI legacy completions shape).',
        }),
      ),
    ),
    echo: Type.Optional(Nullable(Type.Boolean({ description: 'Return the prompt before the completion (and its tokens in logprobs).' }))),
    best_of: Type.Optional(Nullable(Type.Integer({ description: 'Not implemented: only 1 (or equal to n) is accepted.' }))),
    suffix: Type.Optional(Nullable(Type.String({ description: 'Not implemented: only null is accepted.' }))),
  },
  { additionalProperties: false },
);

export const ChatMessage = Type.Object({
  role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('developer')]),
  content: Type.String(),
  name: Type.Optional(Type.String()),
});

export const ChatCompletionRequest = Type.Object(
  {
    ...sampling,
    messages: Type.Array(ChatMessage, { minItems: 1 }),
    max_completion_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 4096 }))),
    logprobs: Type.Optional(Nullable(Type.Boolean({ description: 'Log-probabilities of each generated token.' }))),
    top_logprobs: Type.Optional(
      Nullable(Type.Integer({ minimum: 0, maximum: MAX_LOGPROBS, description: 'Most likely alternatives per token (needs logprobs: true).' })),
    ),
  },
  { additionalProperties: false },
);

const Usage = Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer(), total_tokens: Type.Integer() });
const finish = Type.Union([Type.Literal('stop'), Type.Literal('length')]);

export const CompletionLogprobs = Type.Object({
  tokens: Type.Array(Type.String()),
  token_logprobs: Type.Array(Nullable(Type.Number())),
  top_logprobs: Type.Array(Nullable(Type.Record(Type.String(), Type.Number()))),
  text_offset: Type.Array(Type.Integer()),
});

export const CompletionObject = Type.Object({
  id: Type.String(),
  object: Type.Literal('text_completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(Type.Object({ text: Type.String(), index: Type.Integer(), logprobs: Nullable(CompletionLogprobs), finish_reason: finish })),
  usage: Usage,
});

const TopLogprob = Type.Object({ token: Type.String(), logprob: Type.Number(), bytes: Nullable(Type.Array(Type.Integer())) });
export const ChatLogprobs = Type.Object({
  content: Nullable(Type.Array(Type.Object({ ...TopLogprob.properties, top_logprobs: Type.Array(TopLogprob) }))),
  refusal: Type.Null(),
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
      logprobs: Nullable(ChatLogprobs),
      finish_reason: finish,
    }),
  ),
  usage: Usage,
});

const Inputs = Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 256 })]);

export const EmbeddingRequest = Type.Object(
  {
    model: Type.String(),
    input: Inputs,
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { default: 'float' })),
    pooling: Type.Optional(
      Type.Union([Type.Literal('mean'), Type.Literal('cls')], {
        default: 'mean',
        description:
          "Crucible extension. mean: average of the final hidden states over the input's tokens; cls (bert only): the hidden state of a <|cls|> token put first.",
      }),
    ),
    dimensions: Type.Optional(Type.Integer({ description: 'Not implemented: only the model width is accepted.' })),
    user: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);

export const EmbeddingList = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(
    Type.Object({
      object: Type.Literal('embedding'),
      index: Type.Integer(),
      embedding: Type.Union([Type.String({ description: 'encoding_format base64: little-endian float32 bytes' }), Type.Array(Type.Number())]),
    }),
  ),
  model: Type.String(),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

export const FillMaskRequest = Type.Object(
  {
    model: Type.String({ description: 'A trained bert (masked LM) model.' }),
    input: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 64 })], {
      description: 'Text with one or more <|mask|> tokens.',
    }),
    top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 5 })),
  },
  { additionalProperties: false },
);

export const FillMaskList = Type.Object({
  object: Type.Literal('list'),
  model: Type.String(),
  data: Type.Array(
    Type.Object({
      index: Type.Integer(),
      masks: Type.Array(
        Type.Object({
          position: Type.Integer({ description: "The mask's index among the input's tokens." }),
          candidates: Type.Array(Type.Object({ token: Type.String(), token_id: Type.Integer(), score: Type.Number({ description: 'Softmax probability.' }) })),
        }),
      ),
    }),
  ),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});
