// A model's own chat template: the Jinja `chat_template` of its tokenizer_config.json, rendered
// with @huggingface/jinja (what transformers.js uses) with the variables transformers passes:
// messages, add_generation_prompt, and the special tokens (bos_token, eos_token, ...). Which text
// is an assistant's answer (the loss of chat data) is found by rendering, not by guessing: the
// conversation up to that turn with the generation prompt is a prefix of the conversation through
// it, and the difference is the answer with whatever the template closes it with.

import { type ChatSegment, type ChatTemplate, type ChatTurn, CRUCIBLE_CHAT_TEMPLATE } from '@crucible/domain';
import { Template } from '@huggingface/jinja';
import { HfTokenizer } from './tokenizer/hf-tokenizer';
import type { Tokenizer } from './tokenizer/tokenizer';

export class ChatTemplateError extends Error {}

const tokenText = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof (v as { content?: unknown })?.content === 'string' ? ((v as { content: string }).content as string) : undefined;

/** A Jinja chat template with the special tokens of its tokenizer_config.json. */
export function jinjaChatTemplate(source: string, config: Record<string, unknown> = {}): ChatTemplate {
  let template: Template;
  try {
    template = new Template(source);
  } catch (err) {
    throw new ChatTemplateError(`chat_template does not parse: ${(err as Error).message}`);
  }
  const specials: Record<string, string> = {};
  for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const t = tokenText(config[k]);
    if (t !== undefined) specials[k] = t;
  }
  const render = (messages: ChatTurn[], addGenerationPrompt: boolean): string => {
    try {
      return template.render({ messages, add_generation_prompt: addGenerationPrompt, ...specials });
    } catch (err) {
      throw new ChatTemplateError(`chat_template failed to render: ${(err as Error).message}`);
    }
  };
  return {
    crucible: false,
    prompt: (messages) => render(messages, true),
    segments(messages) {
      const full = render(messages, false);
      const out: ChatSegment[] = [];
      let at = 0;
      messages.forEach((m, i) => {
        if (m.role !== 'assistant') return;
        const before = render(messages.slice(0, i), true);
        const through = render(messages.slice(0, i + 1), false);
        // the answer starts where the generation prompt ends, and ends where this turn's rendering does
        let start = full.startsWith(before) ? before.length : full.indexOf(m.content, at);
        let end = full.startsWith(through) ? through.length : start + m.content.length;
        if (start < at || start < 0) start = at;
        if (end < start) end = start;
        if (start > at) out.push({ text: full.slice(at, start), assistant: false });
        out.push({ text: full.slice(start, end), assistant: true });
        at = end;
      });
      if (at < full.length) out.push({ text: full.slice(at), assistant: false });
      return out;
    },
  };
}

const cache = new WeakMap<Tokenizer, ChatTemplate>();

/**
 * Whether a model has a chat template: its tokenizer's own (tokenizer_config.json's chat_template),
 * or Crucible's for the models Crucible trained. An imported model without one (a base model, as
 * GPT-2 or TinyLlama's base) has none: chat prompts would come in a format it never saw.
 */
export function hasChatTemplate(tokenizer: Tokenizer, imported: boolean): boolean {
  const config = tokenizer instanceof HfTokenizer ? (tokenizer.config as Record<string, unknown> | undefined) : undefined;
  return typeof config?.chat_template === 'string' || !imported;
}

/** The template a model is used with: its tokenizer's own, or Crucible's for the models Crucible trains. */
export function chatTemplateOf(tokenizer: Tokenizer): ChatTemplate {
  let t = cache.get(tokenizer);
  if (!t) {
    const config = tokenizer instanceof HfTokenizer ? (tokenizer.config as Record<string, unknown> | undefined) : undefined;
    const source = config?.chat_template;
    t = typeof source === 'string' ? jinjaChatTemplate(source, config) : CRUCIBLE_CHAT_TEMPLATE;
    cache.set(tokenizer, t);
  }
  return t;
}
