// Dataset formats: a file is plain text, or JSONL whose every line is an object of one shape:
// {"text"}, {"prompt", "completion"}, {"messages": [{role, content}]} or a preference pair
// {"input": {"messages"}, "preferred_output": [answer], "non_preferred_output": [answer]}
// or a reinforcement prompt {"messages": [... ending in a user message], <fields for the grader>}
// (validated by @crucible/datasets), and how each becomes training documents.

import { type ChatTemplate, type ChatTurn, CRUCIBLE_CHAT_TEMPLATE } from './chat-template';
import type { FileFormat } from './schemas/files';
import type { MethodType } from './schemas/jobs';

/** Which file formats each method can train on. */
export const METHOD_FORMATS: Record<MethodType, readonly FileFormat[]> = {
  pretrain: ['text', 'jsonl_text'],
  mlm: ['text', 'jsonl_text'],
  supervised: ['jsonl_prompt_completion', 'jsonl_chat'],
  dpo: ['jsonl_preference'],
  reinforcement: ['jsonl_reinforcement'],
};

export interface Segment {
  text: string;
  /** Whether the loss counts on these tokens (completions in supervised data). */
  train: boolean;
}

/** Which tokens of chat data carry loss: the assistant turns (default), or every token. */
export type ChatLoss = 'assistant' | 'all';

/**
 * The training documents of a file, as segments. Plain text is one segment; {text} lines are one
 * document each; prompt/completion lines are the prompt (no loss) and the completion; chat lines
 * are rendered with the chat template, with loss on the assistant turns (or on all tokens).
 */
export function datasetDocuments(
  text: string,
  format: FileFormat,
  chatLoss: ChatLoss = 'assistant',
  template: ChatTemplate = CRUCIBLE_CHAT_TEMPLATE,
): Segment[][] {
  if (format === 'text') return [[{ text, train: true }]];
  const docs: Segment[][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const r = JSON.parse(line);
    if (format === 'jsonl_text') docs.push([{ text: r.text, train: true }]);
    else if (format === 'jsonl_prompt_completion')
      docs.push([
        { text: r.prompt, train: false },
        { text: r.completion, train: true },
      ]);
    else if (format === 'jsonl_preference') {
      const pair = r as PreferenceRecord;
      docs.push(
        answerDocument(pair.input.messages, pair.preferred_output[0], template),
        answerDocument(pair.input.messages, pair.non_preferred_output[0], template),
      );
    } else if (format === 'jsonl_reinforcement') {
      // a prompt: the conversation and the generation prompt, no loss (the answers are sampled)
      docs.push([{ text: template.prompt(r.messages as ChatTurn[]), train: false }]);
    } else {
      const segments = template.segments(r.messages as ChatTurn[]);
      docs.push(segments.map((s) => ({ text: s.text, train: chatLoss === 'all' || s.assistant })));
    }
  }
  return docs;
}

/** A line of a preference file (OpenAI's DPO format), as validated. */
export interface PreferenceRecord {
  input: { messages: ChatTurn[] };
  preferred_output: [ChatTurn];
  non_preferred_output: [ChatTurn];
}

/**
 * The conversation `messages` answered by `answer`, rendered with the template up to the end of
 * the answer: loss on the answer (and its end marker) only, never on earlier assistant turns.
 */
export function answerDocument(messages: ChatTurn[], answer: ChatTurn, template: ChatTemplate = CRUCIBLE_CHAT_TEMPLATE): Segment[] {
  const segments = template.segments([...messages, answer]);
  let last = segments.length - 1;
  while (last >= 0 && !segments[last]?.assistant) last--;
  return segments.slice(0, last + 1).map((s, i) => ({ text: s.text, train: i === last }));
}

/**
 * Characters a character-level tokenizer does not know, fed one line at a time (so a file is read
 * as a stream): the first `limit` distinct ones, each with the first line it is on. Special
 * tokens are stripped first; in plain text a newline counts once, on line 1, when the file has
 * more than one line.
 */
export class UnknownCharacters {
  private readonly found = new Map<string, number>();
  private newline = false;

  constructor(
    private readonly format: FileFormat,
    private readonly known: (ch: string) => boolean,
    private readonly specials: readonly string[],
    private readonly limit = 10,
  ) {}

  /** One line (without its newline); `last` when nothing follows it. */
  line(raw: string, line: number, last = false): void {
    if (this.format === 'text') {
      this.visit(raw, line);
      if (!last) this.newline = true;
      return;
    }
    if (!raw.trim()) return;
    for (const d of datasetDocuments(raw, this.format)) for (const s of d) this.visit(s.text, line);
  }

  result(): Array<{ char: string; line: number }> {
    if (this.format === 'text' && this.newline && !this.known('\n') && !this.found.has('\n')) this.found.set('\n', 1);
    return [...this.found].map(([char, line]) => ({ char, line }));
  }

  private visit(s: string, line: number): void {
    const stripped = this.specials.reduce((acc, sp) => acc.split(sp).join(''), s);
    for (const ch of stripped) if (!this.known(ch) && !this.found.has(ch) && this.found.size < this.limit) this.found.set(ch, line);
  }
}

/** UnknownCharacters over a whole text. */
export function unknownCharacters(
  text: string,
  format: FileFormat,
  known: (ch: string) => boolean,
  specials: readonly string[],
  limit = 10,
): Array<{ char: string; line: number }> {
  const u = new UnknownCharacters(format, known, specials, limit);
  const lines = text.split('\n');
  lines.forEach((l, i) => {
    u.line(l, i + 1, i === lines.length - 1);
  });
  return u.result();
}
