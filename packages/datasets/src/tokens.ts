// A dataset as the trainer sees it: documents encoded one after another, separated by the
// end-of-text token; supervised prompts get loss weight 0. Also the validation split (the end of
// the data, or a seeded selection of records), and per-record tokens for statistics and previews.
import { answerDocument, type ChatLoss, type ChatTurn, datasetDocuments, type FileFormat, type PreferenceRecord } from '@crucible/domain';
import { chatTemplateOf, type Tokenizer } from '@crucible/model-files';

export interface TokenStream {
  tokens: Int32Array;
  /** Present only when some tokens carry no loss (supervised prompts). */
  weights?: Float32Array;
  /** Index of each document's first token (JSONL records; plain text is one document). */
  docStarts?: number[];
}

export function documentsText(text: string, format: FileFormat): string {
  return datasetDocuments(text, format)
    .map((doc) => doc.map((s) => s.text).join(''))
    .join('\n');
}

export function encodeDataset(text: string, format: FileFormat, tok: Tokenizer, chatLoss: ChatLoss = 'assistant'): TokenStream {
  // chat data is rendered with the model's own template (Crucible's for the models it trains)
  const docs = datasetDocuments(text, format, chatLoss, chatTemplateOf(tok));
  const eot = tok.special('eot');
  const ids: number[] = [];
  const w: number[] = [];
  const docStarts: number[] = [];
  let masked = false;
  docs.forEach((doc, i) => {
    if (i > 0 && eot !== undefined && ids.at(-1) !== eot) {
      ids.push(eot);
      w.push(0);
    }
    docStarts.push(ids.length);
    for (const seg of doc) {
      const enc = tok.encode(seg.text);
      for (const id of enc) {
        ids.push(id);
        w.push(seg.train ? 1 : 0);
      }
      if (!seg.train) masked = true;
    }
    // a completion ends with end-of-text, so the model learns to stop (chat turns end with <|im_end|>)
    if (format === 'jsonl_prompt_completion' && eot !== undefined) {
      ids.push(eot);
      w.push(1);
    }
  });
  return { tokens: Int32Array.from(ids), weights: masked ? Float32Array.from(w) : undefined, docStarts };
}

/** A preference pair as token ids: the conversation rendered up to the answer, and each answer (with its end marker). */
export interface PreferencePair {
  prompt: Int32Array;
  chosen: Int32Array;
  rejected: Int32Array;
}

/** The pairs of a preference file (OpenAI's DPO format), rendered with the model's chat template. */
export function encodePreferences(text: string, tok: Tokenizer): PreferencePair[] {
  const template = chatTemplateOf(tok);
  const encode = (parts: string[]) => Int32Array.from(parts.flatMap((p) => tok.encode(p)));
  const pairs: PreferencePair[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const r = JSON.parse(line) as PreferenceRecord;
    // the two documents share the prompt: the conversation up to the answer
    const chosen = answerDocument(r.input.messages, r.preferred_output[0], template);
    const rejected = answerDocument(r.input.messages, r.non_preferred_output[0], template);
    pairs.push({
      prompt: encode(chosen.slice(0, -1).map((s) => s.text)),
      chosen: encode([chosen.at(-1)?.text ?? '']),
      rejected: encode([rejected.at(-1)?.text ?? '']),
    });
  }
  return pairs;
}

/** A reinforcement prompt: the conversation rendered up to the answer, and its line for the grader. */
export interface ReinforcementPrompt {
  prompt: Int32Array;
  /** The whole line (its fields are the grader's {{item.*}}). */
  item: Record<string, unknown>;
  /** 1-based line of the file. */
  line: number;
}

/** The prompts of a reinforcement file (OpenAI's format), rendered with the model's chat template and its generation prompt. */
export function encodePrompts(text: string, tok: Tokenizer): ReinforcementPrompt[] {
  const template = chatTemplateOf(tok);
  const out: ReinforcementPrompt[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const item = JSON.parse(line) as Record<string, unknown> & { messages: ChatTurn[] };
    out.push({ prompt: Int32Array.from(tok.encode(template.prompt(item.messages))), item, line: i + 1 });
  });
  return out;
}

/** One record's tokens (a JSONL line, or a line of plain text), each with whether it carries loss. */
export function recordTokens(line: string, format: FileFormat, tok: Tokenizer, chatLoss: ChatLoss = 'assistant'): Array<{ id: number; loss: boolean }> {
  const out: Array<{ id: number; loss: boolean }> = [];
  for (const doc of datasetDocuments(line, format, chatLoss, chatTemplateOf(tok))) {
    for (const seg of doc) for (const id of tok.encode(seg.text)) out.push({ id, loss: seg.train });
  }
  const eot = tok.special('eot');
  if (format === 'jsonl_prompt_completion' && eot !== undefined) out.push({ id: eot, loss: true });
  return out;
}

/** Pieces plain text is cut into for a seeded validation split. */
export const TEXT_SPLIT_CHUNKS = 100;

/**
 * Holds out `ratio` of a stream for validation: without a seed, the end of the data; with one, a
 * seeded random selection of documents (of TEXT_SPLIT_CHUNKS equal chunks for one-document text),
 * each kept whole and in order.
 */
export function splitStream(s: TokenStream, ratio = 0.1, seed: number | null = null): { train: TokenStream; val: TokenStream } {
  if (seed === null) {
    const n = Math.floor(s.tokens.length * (1 - ratio));
    const starts = s.docStarts ?? [0];
    return {
      train: { tokens: s.tokens.subarray(0, n), weights: s.weights?.subarray(0, n), docStarts: starts.filter((x) => x < n) },
      // the document cut at n starts the validation part
      val: { tokens: s.tokens.subarray(n), weights: s.weights?.subarray(n), docStarts: [0, ...starts.filter((x) => x > n).map((x) => x - n)] },
    };
  }
  const starts =
    s.docStarts && s.docStarts.length > 1
      ? s.docStarts
      : Array.from({ length: Math.min(TEXT_SPLIT_CHUNKS, s.tokens.length) }, (_, i) =>
          Math.floor((i * s.tokens.length) / Math.min(TEXT_SPLIT_CHUNKS, s.tokens.length)),
        );
  const units = starts.map((start, i) => [start, starts[i + 1] ?? s.tokens.length] as const);
  const order = shuffled(units.length, seed);
  const held = new Set(order.slice(0, Math.max(1, Math.round(units.length * ratio))));
  const pick = (val: boolean): TokenStream => {
    const parts = units.filter((_, i) => held.has(i) === val);
    const n = parts.reduce((a, [x, y]) => a + (y - x), 0);
    const tokens = new Int32Array(n);
    const weights = s.weights ? new Float32Array(n) : undefined;
    const docStarts: number[] = [];
    let at = 0;
    for (const [x, y] of parts) {
      docStarts.push(at);
      tokens.set(s.tokens.subarray(x, y), at);
      weights?.set((s.weights as Float32Array).subarray(x, y), at);
      at += y - x;
    }
    return { tokens, weights, docStarts };
  };
  return { train: pick(false), val: pick(true) };
}

/** How many of `n` pairs splitPairs holds out. */
export function heldOutPairs(n: number, ratio: number): number {
  return Math.min(n - 1, Math.max(1, Math.round(n * ratio)));
}

/**
 * Holds out `ratio` of a preference file's pairs (at least one, at most all but one): the last ones,
 * or with a seed a seeded selection.
 */
export function splitPairs<T>(pairs: T[], ratio = 0.1, seed: number | null = null): { train: T[]; val: T[] } {
  const held = heldOutPairs(pairs.length, ratio);
  if (seed === null) return { train: pairs.slice(0, pairs.length - held), val: pairs.slice(pairs.length - held) };
  const chosen = new Set(shuffled(pairs.length, seed).slice(0, held));
  return { train: pairs.filter((_, i) => !chosen.has(i)), val: pairs.filter((_, i) => chosen.has(i)) };
}

/** 0..n-1 in a seeded order (Fisher-Yates with mulberry32). */
function shuffled(n: number, seed: number): number[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as number, out[i] as number];
  }
  return out;
}
