// Dataset formats and their validation. A file is plain text, or JSONL whose every line is an
// object of one shape: {"text"}, {"prompt", "completion"} or {"messages": [{role, content}]}.
// Errors name the 1-based line, so a user can fix the file.

import { CrucibleError } from './errors';
import { renderChat } from './schemas/completions';
import type { FileFormat } from './schemas/files';
import type { MethodType } from './schemas/jobs';

export interface DatasetSummary {
  format: FileFormat;
  lines: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes and checks a dataset; `filename` decides between JSONL and plain text. */
export function inspectDataset(bytes: Uint8Array, filename: string): DatasetSummary {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new CrucibleError('invalid_file', 'the file is not valid UTF-8 text', 'file');
  }
  if (text.trim().length === 0) throw new CrucibleError('invalid_file', 'the file is empty', 'file');
  if (!/\.jsonl?$/i.test(filename)) return { format: 'text', lines: text.split('\n').length };
  let format: FileFormat | undefined;
  let count = 0;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const where = `line ${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (err) {
      throw new CrucibleError('invalid_file', `${where} is not valid JSON: ${(err as Error).message}`, where);
    }
    const f = lineFormat(row, where);
    if (format && f !== format) throw new CrucibleError('invalid_file', `${where} is a ${f} record but earlier lines are ${format}`, where);
    format = f;
    count++;
  });
  return { format: format as FileFormat, lines: count };
}

function lineFormat(row: unknown, where: string): FileFormat {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new CrucibleError('invalid_file', `${where} is not a JSON object`, where);
  const r = row as Record<string, unknown>;
  if (typeof r.text === 'string') return 'jsonl_text';
  if ('prompt' in r || 'completion' in r) {
    if (typeof r.prompt !== 'string' || typeof r.completion !== 'string') {
      throw new CrucibleError('invalid_file', `${where}: "prompt" and "completion" must both be strings`, where);
    }
    return 'jsonl_prompt_completion';
  }
  if (Array.isArray(r.messages)) {
    const ok = r.messages.every(
      (m) =>
        typeof m === 'object' && m !== null && typeof (m as { role?: unknown }).role === 'string' && typeof (m as { content?: unknown }).content === 'string',
    );
    if (!ok || r.messages.length === 0)
      throw new CrucibleError('invalid_file', `${where}: "messages" must be a non-empty array of {role, content} strings`, where);
    if ((r.messages.at(-1) as { role: string }).role !== 'assistant') {
      throw new CrucibleError('invalid_file', `${where}: the last message must be the assistant's answer`, where);
    }
    return 'jsonl_chat';
  }
  throw new CrucibleError('invalid_file', `${where} has none of "text", "prompt"/"completion" or "messages"`, where);
}

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

/**
 * The training documents of a file, as segments. Plain text is one segment; {text} lines are one
 * document each; prompt/completion and chat lines are a prompt segment (no loss) and the answer.
 */
export function datasetDocuments(text: string, format: FileFormat): Segment[][] {
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
      const msgs = r.messages as Array<{ role: string; content: string }>;
      const last = msgs.at(-1) as { content: string };
      docs.push([
        { text: `${renderChat(msgs.slice(0, -1))}`, train: false },
        { text: ` ${last.content}\n`, train: true },
      ]);
    }
  }
  return docs;
}
