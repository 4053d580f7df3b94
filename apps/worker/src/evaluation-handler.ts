// Runs one evaluation: load the model (or checkpoint) and the file, score every token (loss,
// perplexity, token accuracy; the answer tokens of supervised data on their own; masked tokens
// for bert), then generate greedy answers for exact match and a few samples. Progress is written
// as it goes; a cancel (a status change in PostgreSQL) is noticed between batches. A problem of
// the evaluation itself (model or file gone, a model that cannot generate) fails it at once.

import { encodeDataset, type TokenStream } from '@crucible/datasets';
import type { Store } from '@crucible/db';
import {
  CHAT_STOP,
  CrucibleError,
  type EvaluationMetrics,
  type EvaluationPayload,
  type EvaluationRecord,
  type EvaluationSample,
  type FileFormat,
  IM_END,
  renderChat,
  TransientError,
} from '@crucible/domain';
import type { Storage } from '@crucible/storage';
import { chatTemplateOf, sample, scoreTokens, summarize, type Tokenizer, Transformer } from '@crucible/trainer';
import { TRAINING_DEFAULTS } from '@crucible/training-config';
import { UnrecoverableError } from 'bullmq';
import { ModelLoader } from './model-loader';

export interface EvaluationDeps {
  store: Store;
  storage: Storage;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The scoring share of the progress bar when answers are generated too. */
const SCORING_SHARE = 0.7;
const PROGRESS_EVERY_MS = 1000;

interface Example {
  line: number;
  prompt: string;
  /** A chat example's conversation before the answer: rendered with the model's own template. */
  messages?: Array<{ role: string; content: string }>;
  expected: string | null;
  stops: Array<'eot' | 'im_end'>;
}

export async function handleEvaluation(deps: EvaluationDeps, p: EvaluationPayload): Promise<void> {
  const e = await deps.store.evaluations.start(p.projectId, p.evaluationId);
  if (!e) return; // cancelled, or finished by an earlier attempt
  const run = new EvaluationRun(deps, e);
  try {
    await run.execute();
  } catch (err) {
    if (err instanceof TransientError) throw err; // BullMQ retries; the evaluation starts again
    const failure =
      err instanceof CrucibleError
        ? { code: err.code, message: err.message, param: err.param }
        : // the detail (a database or library message, paths) stays in the worker's log
          { code: 'internal_error', message: `evaluation failed: internal error (see the worker log for evaluation ${e.id})`, param: null };
    deps.log(`evaluation ${e.id} failed: ${(err as Error).stack ?? failure.message}`, { evaluation_id: e.id, level: 'error' });
    await deps.store.evaluations
      .finish(
        e.projectId,
        e.id,
        'failed',
        { error: failure },
        { message: `Evaluation failed: ${failure.message}`, level: 'error', data: { code: failure.code } },
      )
      .catch(() => {});
    throw new UnrecoverableError(failure.message);
  } finally {
    run.dispose();
  }
}

class EvaluationRun {
  private readonly ctl = new AbortController();
  private model: Transformer | undefined;
  private lastProgress = 0;

  constructor(
    private readonly deps: EvaluationDeps,
    private readonly e: EvaluationRecord,
  ) {}

  dispose(): void {
    this.model?.dispose();
  }

  async execute(): Promise<void> {
    const { store, storage } = this.deps;
    const { e } = this;
    const file = await store.files.get(e.projectId, e.fileId);
    if (file?.state !== 'processed') throw new CrucibleError('invalid_file', `file ${e.fileId} is gone or not processed`, 'file');
    const text = (await storage.get(file.storageKey)).toString('utf8');
    const loaded = await new ModelLoader(store, storage).load(e.projectId, e.model);
    this.model = Transformer.create({ ...loaded.config, dropout: 0 }, 0, loaded.weights);
    const model = this.model;
    const examples = model.config.arch === 'gpt' ? this.examples(text, file.format) : [];
    await store.evaluations.addEvent(
      e.projectId,
      e.id,
      `Scoring ${file.id} (${file.format}) with ${e.model} (${model.config.arch}, context ${model.config.blockSize})`,
    );
    const metrics = await this.score(model, loaded.tokenizer, encodeDataset(text, file.format, loaded.tokenizer), file.lines, examples.length > 0);
    if (this.ctl.signal.aborted) return;
    await store.evaluations.addEvent(e.projectId, e.id, `Scored ${metrics.tokens} tokens: loss ${fmt(metrics.loss)}, perplexity ${fmt(metrics.perplexity)}`, {
      data: { loss: metrics.loss, perplexity: metrics.perplexity, token_accuracy: metrics.token_accuracy },
    });
    const samples = await this.generateSamples(model, loaded.tokenizer, examples, metrics);
    if (!samples) return; // cancelled
    const summary = [
      `loss ${fmt(metrics.loss)}`,
      `perplexity ${fmt(metrics.perplexity)}`,
      `token accuracy ${pct(metrics.token_accuracy)}`,
      ...(metrics.answer_loss !== null ? [`answer loss ${fmt(metrics.answer_loss)}`] : []),
      ...(metrics.exact_match !== null ? [`exact match ${pct(metrics.exact_match)} of ${metrics.exact_match_examples}`] : []),
    ].join(', ');
    await store.evaluations.finish(e.projectId, e.id, 'succeeded', { metrics, samples }, { message: `Evaluation succeeded: ${summary}`, data: { ...metrics } });
  }

  /** Loss, perplexity and accuracy over the file (masked tokens for a BERT; the answers too for supervised data). */
  private async score(model: Transformer, tok: Tokenizer, stream: TokenStream, records: number, generating: boolean): Promise<EvaluationMetrics> {
    const { e } = this;
    const scoreShare = generating ? SCORING_SHARE : 1;
    const common = {
      batchSize: e.options.batch_size,
      seqLen: model.config.blockSize,
      seed: e.options.seed,
      onProgress: (done: number, total: number) => this.progress((scoreShare * done) / Math.max(1, total)),
      signal: this.ctl.signal,
    };
    if (model.config.arch === 'bert') {
      const maskId = tok.special('mask');
      if (maskId === undefined) throw new CrucibleError('invalid_model', `${e.model} is a masked LM whose tokenizer has no <|mask|> token`, 'model');
      const masking = { probability: TRAINING_DEFAULTS.mlmProbability, maskId, vocabSize: tok.vocabSize, specialIds: new Set(tok.specialTokens.values()) };
      const r = await scoreTokens(model, stream.tokens, undefined, { ...common, masking });
      return this.metrics(summarize(r.all), records);
    }
    const r = await scoreTokens(model, stream.tokens, stream.weights, common);
    return this.metrics(summarize(r.all), records, r.weighted ? summarize(r.weighted) : undefined);
  }

  /** Generates the examples' answers: the first `samples` are kept, exact match is judged on the first `max_examples` (set on `metrics`); null when cancelled. */
  private async generateSamples(model: Transformer, tok: Tokenizer, examples: Example[], metrics: EvaluationMetrics): Promise<EvaluationSample[] | null> {
    const { options } = this.e;
    const samples: EvaluationSample[] = [];
    let matched = 0;
    let judged = 0;
    for (const [i, ex] of examples.entries()) {
      if (this.ctl.signal.aborted) return null;
      const output = await this.generate(model, tok, ex);
      const exact = ex.expected === null ? null : output.trim() === ex.expected.trim();
      if (exact !== null && i < options.max_examples) {
        judged++;
        if (exact) matched++;
      }
      if (samples.length < options.samples) samples.push({ line: ex.line, prompt: ex.prompt, expected: ex.expected, output, exact_match: exact });
      await this.progress(SCORING_SHARE + ((1 - SCORING_SHARE) * (i + 1)) / examples.length);
    }
    if (judged > 0) {
      metrics.exact_match = matched / judged;
      metrics.exact_match_examples = judged;
    }
    return samples;
  }

  private metrics(all: ReturnType<typeof summarize>, records: number, answers?: ReturnType<typeof summarize>): EvaluationMetrics {
    const n = (x: number) => (Number.isFinite(x) ? x : null);
    return {
      loss: n(all.loss),
      perplexity: n(all.perplexity),
      token_accuracy: n(all.accuracy),
      tokens: all.tokens,
      records,
      answer_loss: answers ? n(answers.loss) : null,
      answer_perplexity: answers ? n(answers.perplexity) : null,
      answer_token_accuracy: answers ? n(answers.accuracy) : null,
      answer_tokens: answers ? answers.tokens : null,
      exact_match: null,
      exact_match_examples: null,
    };
  }

  /**
   * What to generate: for prompt/completion and chat data, the first max_examples records (their
   * answers are compared); otherwise, `samples` records continued from their first half.
   */
  private examples(text: string, format: FileFormat): Example[] {
    const { max_examples, samples } = this.e.options;
    const out: Example[] = [];
    const lines = text.split('\n');
    const want = format === 'jsonl_prompt_completion' || format === 'jsonl_chat' ? Math.max(max_examples, samples) : samples;
    for (let i = 0; i < lines.length && out.length < want; i++) {
      const raw = (lines[i] as string).trim();
      if (!raw) continue;
      if (format === 'jsonl_prompt_completion') {
        const r = JSON.parse(raw) as { prompt: string; completion: string };
        out.push({ line: i + 1, prompt: r.prompt, expected: r.completion, stops: ['eot'] });
      } else if (format === 'jsonl_chat') {
        const r = JSON.parse(raw) as { messages: Array<{ role: string; content: string }> };
        const last = r.messages.at(-1) as { content: string };
        out.push({
          line: i + 1,
          prompt: renderChat(r.messages.slice(0, -1)),
          messages: r.messages.slice(0, -1),
          expected: last.content,
          stops: ['eot', 'im_end'],
        });
      } else {
        const body = format === 'jsonl_text' ? (JSON.parse(raw) as { text: string }).text : raw;
        const cut = Math.max(1, Math.min(200, Math.floor(body.length / 2)));
        out.push({ line: i + 1, prompt: body.slice(0, cut), expected: null, stops: ['eot'] });
      }
    }
    return out;
  }

  private async generate(model: Transformer, tok: Tokenizer, ex: Example): Promise<string> {
    const stopTokens = ex.stops.map((r) => tok.special(r)).filter((id): id is number => id !== undefined);
    const template = ex.messages ? chatTemplateOf(tok) : undefined;
    const prompt = template && ex.messages ? template.prompt(ex.messages) : ex.prompt;
    const stop = ex.stops.includes('im_end') && tok.special('im_end') === undefined && template?.crucible !== false ? [CHAT_STOP, IM_END] : [];
    const r = await sample(model, tok, prompt, {
      maxNewTokens: this.e.options.max_tokens,
      temperature: 0,
      stopTokens,
      stop,
      signal: this.ctl.signal,
      addSpecialTokens: !template,
    });
    return r.text;
  }

  /** Records progress (at most once a second) and notices a cancel. */
  private async progress(share: number): Promise<void> {
    const now = Date.now();
    if (now - this.lastProgress < PROGRESS_EVERY_MS && share < 1) return;
    this.lastProgress = now;
    const status = await this.deps.store.evaluations.progress(this.e.projectId, this.e.id, Math.min(1, share));
    if (status !== 'running') this.ctl.abort();
  }
}

const fmt = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
