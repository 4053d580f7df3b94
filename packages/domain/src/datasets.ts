// Dataset formats: a file is plain text, or JSONL whose every line is an object of one shape:
// {"text"}, {"prompt", "completion"} or {"messages": [{role, content}]} (validated by
// @crucible/datasets), and how each becomes training documents.

import { chatSegments } from './chat-template';
import type { FileFormat } from './schemas/files';
import type { MethodType } from './schemas/jobs';

/** Which file formats each method can train on. */
export const METHOD_FORMATS: Record<MethodType, readonly FileFormat[]> = {
  pretrain: ['text', 'jsonl_text'],
  mlm: ['text', 'jsonl_text'],
  supervised: ['jsonl_prompt_completion', 'jsonl_chat'],
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
export function datasetDocuments(text: string, format: FileFormat, chatLoss: ChatLoss = 'assistant'): Segment[][] {
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
    else {
      const segments = chatSegments(r.messages as Array<{ role: string; content: string }>);
      docs.push(segments.map((s) => ({ text: s.text, train: chatLoss === 'all' || s.assistant })));
    }
  }
  return docs;
}

/**
 * Characters a character-level vocabulary lacks, with the first line each occurs on (up to
 * `limit`), in the text the trainer will encode (chat data rendered with its template).
 */
export function unknownCharacters(
  text: string,
  format: FileFormat,
  known: (ch: string) => boolean,
  specials: readonly string[],
  limit = 10,
): Array<{ char: string; line: number }> {
  const found = new Map<string, number>();
  const strip = (s: string) => specials.reduce((acc, sp) => acc.split(sp).join(''), s);
  const visit = (s: string, line: number) => {
    for (const ch of strip(s)) if (!known(ch) && !found.has(ch) && found.size < limit) found.set(ch, line);
  };
  if (format === 'text') {
    text.split('\n').forEach((l, i) => {
      visit(l, i + 1);
    });
    if (!known('\n') && text.includes('\n') && !found.has('\n')) found.set('\n', 1);
  } else {
    text.split('\n').forEach((raw, i) => {
      if (!raw.trim()) return;
      const doc = datasetDocuments(raw, format);
      for (const d of doc) for (const s of d) visit(s.text, i + 1);
    });
  }
  return [...found].map(([char, line]) => ({ char, line }));
}
