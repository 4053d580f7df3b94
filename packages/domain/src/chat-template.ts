// The chat template, one for training and serving (and, as Jinja, in exported tokenizer_config.json):
//   <|im_start|>system\n{content}<|im_end|>\n
//   <|im_start|>user\n{content}<|im_end|>\n
//   <|im_start|>assistant\n{content}<|im_end|>\n
// A generation prompt ends with "<|im_start|>assistant\n"; the answer ends at <|im_end|>.
// Crucible's tokenizers hold <|im_start|> and <|im_end|> as special tokens (one id each); with a
// byte-level BPE that lacks them (an imported GPT-2) the markers are plain text and generation
// stops at the text "<|im_end|>".

export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';
/** What ends an assistant turn (a stop sequence for chat completions). */
export const CHAT_STOP = IM_END;

export interface ChatTurn {
  role: string;
  content: string;
}

export interface ChatSegment {
  text: string;
  /** Whether this segment is an assistant turn's content (and its end marker). */
  assistant: boolean;
}

const roleName = (role: string) => (role === 'developer' ? 'system' : role);

/** The template as segments: each turn's header, its content + end marker, and the newline. */
export function chatSegments(messages: ChatTurn[]): ChatSegment[] {
  const out: ChatSegment[] = [];
  for (const m of messages) {
    out.push({ text: `${IM_START}${roleName(m.role)}\n`, assistant: false });
    out.push({ text: `${m.content}${IM_END}`, assistant: m.role === 'assistant' });
    out.push({ text: '\n', assistant: false });
  }
  return out;
}

/**
 * A chat template: Crucible's own (below), or a model's Jinja template from its
 * tokenizer_config.json (@crucible/model-files' jinjaChatTemplate).
 */
export interface ChatTemplate {
  /** The whole conversation as segments, each assistant turn's content (and its end marker) marked. */
  segments(messages: ChatTurn[]): ChatSegment[];
  /** The prompt of a chat completion: the conversation, then the generation prompt. */
  prompt(messages: ChatTurn[]): string;
  /** Whether this is Crucible's template (its answers end at the text <|im_end|>). */
  readonly crucible: boolean;
}

/** The prompt for a chat completion: the conversation, then the assistant's header. */
export function renderChat(messages: ChatTurn[], generationPrompt = true): string {
  const body = chatSegments(messages)
    .map((s) => s.text)
    .join('');
  return generationPrompt ? `${body}${IM_START}assistant\n` : body;
}

/** Crucible's template, for models trained by Crucible. */
export const CRUCIBLE_CHAT_TEMPLATE: ChatTemplate = { segments: chatSegments, prompt: (m) => renderChat(m), crucible: true };
