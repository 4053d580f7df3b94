// Turns a stored dataset into token streams for the trainer: documents are encoded one after
// another, separated by the end-of-text token; supervised prompts get loss weight 0.
import { type ChatLoss, datasetDocuments, type FileFormat } from '@crucible/domain';
import type { Tokenizer } from '@crucible/trainer';

export interface TokenStream {
  tokens: Int32Array;
  /** Present only when some tokens carry no loss (supervised prompts). */
  weights?: Float32Array;
}

export function documentsText(text: string, format: FileFormat): string {
  return datasetDocuments(text, format)
    .map((doc) => doc.map((s) => s.text).join(''))
    .join('\n');
}

export function encodeDataset(text: string, format: FileFormat, tok: Tokenizer, chatLoss: ChatLoss = 'assistant'): TokenStream {
  const docs = datasetDocuments(text, format, chatLoss);
  const eot = tok.special('eot');
  const ids: number[] = [];
  const w: number[] = [];
  let masked = false;
  docs.forEach((doc, i) => {
    if (i > 0 && eot !== undefined && ids.at(-1) !== eot) {
      ids.push(eot);
      w.push(0);
    }
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
  return { tokens: Int32Array.from(ids), weights: masked ? Float32Array.from(w) : undefined };
}

/** Holds out the last 10% of a stream for validation. */
export function splitStream(s: TokenStream, fraction = 0.9): { train: TokenStream; val: TokenStream } {
  const n = Math.floor(s.tokens.length * fraction);
  return {
    train: { tokens: s.tokens.subarray(0, n), weights: s.weights?.subarray(0, n) },
    val: { tokens: s.tokens.subarray(n), weights: s.weights?.subarray(n) },
  };
}
