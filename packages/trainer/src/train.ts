// The training loop, top to bottom: set lr, maybe evaluate, forward/backward over the
// micro-batches, clip by global norm, optimizer step, log, maybe checkpoint. No I/O happens here:
// hooks receive metrics and checkpoint bytes, and an AbortSignal stops the loop between steps.
// The objective decides the micro-batches and their loss: token windows (causal, masked LM), or
// preference pairs against reference log-probabilities computed once at the start (dpo), or
// answers sampled in groups and scored by a grader (grpo, OpenAI's reinforcement method).

import type { Tokenizer, Weights } from '@crucible/model-files';
import {
  TRAINING_DEFAULTS as D,
  type DpoConfig,
  defaultShortWindows,
  defaultWarmupSteps,
  isCausal,
  PRECISIONS,
  type TrainConfig,
} from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { withPrecision } from './backend';
import { variableGrads } from './backprop';
import { Bf16Weights } from './bf16-weights';
import { type DecodedCheckpoint, decodeCheckpoint, encodeCheckpoint } from './checkpoint';
import type { ModelConfig } from './config';
import { type Batch, BatchSource, evalBatches, type MaskingConfig } from './data';
import type { DataParallel, GradientStream } from './data-parallel';
import {
  groupAdvantages,
  grpoTerms,
  type ReinforcementData,
  type ReinforcementMetrics,
  ReinforcementTally,
  type Rollout,
  rolloutBatch,
  rolloutLogProbs,
  sampleGroup,
} from './grpo';
import { CHUNKED_HEAD_BYTES, forEachLogitChunk, largeHeadInput } from './logit-chunks';
import type { Transformer } from './model';
import { crossEntropy, linearCrossEntropy } from './ops';
import { DEFAULT_OPTIMIZER, globalNorm, Optimizer } from './optim';
import { PackedSource, packedEvalBatches, streamExamples } from './packing';
import {
  answerLogProbs,
  chosenNll,
  dpoTerms,
  PairSource,
  type PreferenceExample,
  type PreferenceMetrics,
  pairBatch,
  preferenceMetrics,
  referenceFor,
  referenceLogProbs,
  rewardSums,
} from './preference';
import { mixSeed, Rng } from './rng';
import { learningRate } from './schedule';

export interface StepMetrics {
  step: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  ms: number;
  tokensPerSec: number;
  /** dpo: the step's rewards (TRL's rewards/*). */
  preference?: PreferenceMetrics;
  /** grpo: the step's rewards, KL and answer lengths. */
  reinforcement?: ReinforcementMetrics;
}

export interface EvalMetrics {
  step: number;
  loss: number;
  perplexity: number;
  /** Token accuracy of the argmax prediction (over masked positions for MLM). */
  accuracy: number;
  tokens: number;
  /** dpo: the validation pairs' rewards; loss is their DPO loss, perplexity and accuracy are of the preferred answers' tokens. */
  preference?: PreferenceMetrics;
  /**
   * grpo: the answers sampled for the validation prompts; loss is minus their mean reward,
   * perplexity and accuracy are of their tokens under the model that sampled them.
   */
  reinforcement?: ReinforcementMetrics;
}

export interface TrainHooks {
  onStep?: (m: StepMetrics) => void | Promise<void>;
  /** Returning 'stop' ends the run after this evaluation (early stopping). */
  onEval?: (m: EvalMetrics) => undefined | 'stop' | Promise<undefined | 'stop'> | void | Promise<void>;
  /** Receives a function that serializes the full training state (called only if needed). */
  onCheckpoint?: (step: number, bytes: () => Uint8Array) => void | Promise<void>;
}

export interface TrainResult {
  /** 'completed': reached max_steps; 'stopped_early': an evaluation hook said stop; 'aborted': the signal fired. */
  status: 'completed' | 'stopped_early' | 'aborted';
  step: number;
  lastEval?: EvalMetrics;
}

export type { TrainConfig };

/** A full config from the defaults in @crucible/training-config and `overrides`; validated. */
export function defaultTrainConfig(model: ModelConfig, overrides: Partial<TrainConfig> = {}): TrainConfig {
  const maxSteps = overrides.maxSteps ?? D.maxSteps;
  const lr = overrides.schedule?.lr ?? D.learningRate;
  const objective = overrides.objective ?? (model.arch === 'bert' ? 'mlm' : 'causal');
  const cfg: TrainConfig = {
    objective,
    ...(objective === 'mlm' ? { shortWindows: defaultShortWindows(maxSteps, overrides.seqLen ?? model.blockSize) } : {}),
    maxSteps,
    batchSize: D.batchSize,
    seqLen: model.blockSize,
    gradAccumSteps: D.gradAccumSteps,
    maxGradNorm: D.maxGradNorm,
    activationCheckpointing: D.activationCheckpointing,
    evalInterval: D.evalInterval,
    evalBatches: D.evalBatches,
    logInterval: D.logInterval,
    checkpointInterval: D.checkpointInterval,
    seed: D.seed,
    mlmProbability: D.mlmProbability,
    ...overrides,
    schedule: {
      kind: D.lrScheduler,
      lr,
      minLr: lr * D.minLearningRateRatio,
      warmupSteps: defaultWarmupSteps(maxSteps),
      decaySteps: maxSteps,
      ...overrides.schedule,
    },
    optimizer: { ...DEFAULT_OPTIMIZER, ...overrides.optimizer },
  };
  validateTrainConfig(cfg, model);
  return cfg;
}

export function validateTrainConfig(c: TrainConfig, model: ModelConfig): void {
  const ints = ['maxSteps', 'batchSize', 'seqLen', 'gradAccumSteps'] as const;
  for (const k of ints) if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`train config: ${k} must be an integer >= 1`);
  if (c.seqLen > model.blockSize) throw new RangeError(`train config: seqLen ${c.seqLen} exceeds block_size ${model.blockSize}`);
  if (!(c.schedule.lr > 0)) throw new RangeError('train config: lr must be > 0');
  if (!(c.schedule.minLr >= 0 && c.schedule.minLr <= c.schedule.lr)) throw new RangeError('train config: min_lr must be in [0, lr]');
  if (c.objective === 'mlm' && model.arch !== 'bert') throw new RangeError('train config: the mlm objective needs a bert model');
  if ((c.objective === 'causal' || c.objective === 'dpo') && !isCausal(model.arch)) {
    throw new RangeError(`train config: the ${c.objective} objective needs a causal (gpt or llama) model`);
  }
  if (c.objective === 'dpo' && !(c.dpo && c.dpo.beta > 0 && c.dpo.rpoAlpha >= 0)) throw new RangeError('train config: dpo needs beta > 0 and rpoAlpha >= 0');
  if (c.objective === 'grpo') {
    const g = c.grpo;
    if (!isCausal(model.arch)) throw new RangeError('train config: the grpo objective needs a causal (gpt or llama) model');
    if (!(g && Number.isInteger(g.groupSize) && g.groupSize >= 2 && g.klBeta >= 0 && g.temperature > 0 && g.maxCompletionTokens >= 1 && g.evalSamples >= 1)) {
      throw new RangeError('train config: grpo needs groupSize >= 2, klBeta >= 0, temperature > 0, maxCompletionTokens >= 1 and evalSamples >= 1');
    }
  }
  if (c.precision !== undefined && !PRECISIONS.includes(c.precision)) throw new RangeError(`train config: precision must be ${PRECISIONS.join(' or ')}`);
  if (!(c.maxGradNorm >= 0)) throw new RangeError('train config: max_grad_norm must be >= 0');
  if (
    c.shortWindows &&
    !(Number.isInteger(c.shortWindows.seqLen) && c.shortWindows.seqLen >= 2 && Number.isInteger(c.shortWindows.steps) && c.shortWindows.steps >= 0)
  ) {
    throw new RangeError('train config: shortWindows needs an integer seqLen >= 2 and steps >= 0');
  }
}

export interface TrainData {
  train: Int32Array;
  val: Int32Array;
  /** Optional per-token loss weights aligned with `train` / `val` (e.g. 0 on prompts for SFT). */
  trainWeights?: Float32Array;
  valWeights?: Float32Array;
  /** Where each document of train / val starts (packing: the examples). */
  trainDocStarts?: number[];
  valDocStarts?: number[];
  /** dpo: the pairs (train and val are then unused), and the reference's log-probabilities when resuming. */
  preference?: PreferenceData;
  /** grpo: the prompts, the grader and the reference (train and val are then unused). */
  reinforcement?: ReinforcementData;
}

export interface PreferenceData {
  train: PreferenceExample[];
  val: PreferenceExample[];
  /** [2N] per set, as referenceLogProbs returns; computed from the model at construction when absent. */
  reference?: { train: Float32Array; val: Float32Array };
}

/** What a dpo trainer holds: its pairs, their reference log-probabilities, the pairs it evaluates on. */
interface PreferenceRun {
  data: PreferenceData;
  reference: { train: Float32Array; val: Float32Array };
  evalIds: number[];
}

export class Trainer {
  step = 0;
  /** What a peft model was built on; written into its (adapter-only) checkpoints. */
  baseModel?: string;
  readonly optimizer: Optimizer;
  private readonly source: BatchSource | PackedSource | PairSource;
  private readonly evalSet: Batch[];
  private readonly pairs?: PreferenceRun;
  private readonly rl?: { data: ReinforcementData; evalIds: number[] };
  /** The weights' bf16 copies for steps in bf16 (converted once per step, frozen ones once). */
  readonly bf16Weights = new Bf16Weights();

  constructor(
    readonly model: Transformer,
    readonly tokenizer: Tokenizer,
    readonly config: TrainConfig,
    data: TrainData,
    resume?: { step: number; dataRng: [number, number, number, number]; optimizer: Optimizer },
    /** Data parallelism: this rank's group; `config.batchSize` is then each rank's share of a global batch of size times as many rows. */
    readonly parallel?: DataParallel,
  ) {
    validateTrainConfig(config, model.config);
    if (parallel && (config.objective === 'dpo' || config.objective === 'grpo')) {
      throw new RangeError(`train config: the ${config.objective} objective runs on one worker (data parallelism covers causal and mlm)`);
    }
    const masking = config.objective === 'mlm' ? maskingFor(tokenizer, config.mlmProbability) : undefined;
    const { seqLen: T } = config;
    // every rank draws the same global batches and trains on its own rows of each
    const B = config.batchSize * (parallel?.size ?? 1);
    const dataSeed = resume?.dataRng ?? mixSeed(config.seed, 1);
    if (config.objective === 'dpo') {
      const p = data.preference;
      if (!p || p.val.length === 0) throw new RangeError('a dpo run needs training and validation preference pairs');
      const norm = (config.dpo as DpoConfig).lengthNormalize;
      // the reference is the model as it starts (with LoRA: the base, its adapters still zero)
      // in the run's precision: at step 0 the policy's log-probabilities equal the reference's exactly
      const reference =
        p.reference ??
        withPrecision(config.precision, () => ({ train: referenceLogProbs(model, p.train, T, B, norm), val: referenceLogProbs(model, p.val, T, B, norm) }));
      this.pairs = { data: p, reference, evalIds: Array.from({ length: Math.min(p.val.length, config.evalBatches * B) }, (_, i) => i) };
      this.source = new PairSource(p.train.length, B, dataSeed);
      this.evalSet = [];
    } else if (config.objective === 'grpo') {
      const r = data.reinforcement;
      if (!r || r.train.length === 0 || r.val.length === 0) throw new RangeError('a grpo run needs training and validation prompts');
      if ((config.grpo?.klBeta ?? 0) > 0 && !r.reference) throw new RangeError('a grpo run with a KL penalty needs the reference model');
      this.rl = { data: r, evalIds: Array.from({ length: Math.min(r.val.length, config.evalBatches * B) }, (_, i) => i) };
      this.source = new PairSource(r.train.length, B, dataSeed);
      this.evalSet = [];
    } else if (config.packing) {
      if (config.objective !== 'causal') throw new RangeError('packing is for the causal objective');
      this.source = new PackedSource(streamExamples(data.train, data.trainDocStarts ?? [0], T, data.trainWeights), B, T, dataSeed);
      this.evalSet = packedEvalBatches(streamExamples(data.val, data.valDocStarts ?? [0], T, data.valWeights), B, T, config.evalBatches);
    } else {
      this.source = new BatchSource(data.train, B, T, config.objective, dataSeed, masking, data.trainWeights);
      this.evalSet = evalBatches(data.val, B, T, config.evalBatches, config.objective, mixSeed(config.seed, 2), masking, data.valWeights);
    }
    this.optimizer = resume?.optimizer ?? new Optimizer(config.optimizer);
    this.step = resume?.step ?? 0;
  }

  /** Continues a run from checkpoint bytes, on the same data. */
  static resume(bytes: Uint8Array, data: TrainData, baseWeights?: Weights): Trainer {
    return Trainer.fromCheckpoint(decodeCheckpoint(bytes, baseWeights), data);
  }

  /**
   * Continues a run from a decoded training checkpoint; the trainer takes ownership of its model
   * (decode once, read the tokenizer to encode the data, then hand the checkpoint over).
   */
  /** Resumes a training checkpoint; `over` changes its config before the trainer checks it (a resumed job's steps). */
  static fromCheckpoint(
    ck: DecodedCheckpoint,
    data: TrainData,
    over: Partial<Pick<TrainConfig, 'maxSteps' | 'precision'>> = {},
    parallel?: DataParallel,
  ): Trainer {
    if (!ck.train || !ck.state) throw new Error('checkpoint has no training state (it is a model export)');
    const optimizer = new Optimizer(ck.train.optimizer);
    const m = new Map<string, tf.Tensor>();
    const v = new Map<string, tf.Tensor>();
    for (const [k, t] of ck.optimizerState) (k.startsWith('m.') ? m : v).set(k.slice(2), tf.tensor(t.data, t.shape));
    optimizer.restore(ck.state.optimizerT, m, v, ck.model.trainable());
    for (const t of [...m.values(), ...v.values()]) t.dispose();
    // a dpo run keeps comparing with the reference of its start, not with the checkpoint's model
    const resumed = data.preference && ck.reference ? { ...data, preference: { ...data.preference, reference: ck.reference } } : data;
    const trainer = new Trainer(
      ck.model,
      ck.tokenizer,
      { ...ck.train, ...over },
      resumed,
      { step: ck.state.step, dataRng: ck.state.dataRng, optimizer },
      parallel,
    );
    trainer.baseModel = ck.baseModel;
    return trainer;
  }

  async run(hooks: TrainHooks = {}, signal?: AbortSignal): Promise<TrainResult> {
    const c = this.config;
    const dp = this.parallel;
    let lastEval: EvalMetrics | undefined;
    // the ranks start from rank 0's trained parameters, with the same frozen ones (a LoRA model's
    // base: checked, not sent), and stop, evaluate and checkpoint at the same steps
    if (dp) {
      dp.broadcastParameters(this.model.trainable());
      dp.verify(this.model.params, this.step);
    }
    const leads = !dp || dp.rank === 0; // evaluates, and decides an early stop
    while (this.step < c.maxSteps) {
      if (dp ? dp.anyStops(signal?.aborted === true) : signal?.aborted) return { status: 'aborted', step: this.step, lastEval };
      if (c.evalInterval > 0 && this.step % c.evalInterval === 0) {
        let stop = false;
        if (leads) {
          lastEval = this.evaluate();
          stop = (await hooks.onEval?.(lastEval)) === 'stop';
        }
        if (dp ? dp.rootDecides(stop) : stop) {
          await hooks.onCheckpoint?.(this.step, () => this.checkpoint());
          return { status: 'stopped_early', step: this.step, lastEval };
        }
      }
      const m = this.trainStep();
      if (dp && (m.step % dp.checksumInterval === 0 || m.step === c.maxSteps)) dp.verify(this.model.trainable(), m.step);
      if (m.step % c.logInterval === 0 || m.step === c.maxSteps) await hooks.onStep?.(m);
      if (c.checkpointInterval > 0 && m.step % c.checkpointInterval === 0 && m.step < c.maxSteps) {
        await hooks.onCheckpoint?.(m.step, () => this.checkpoint());
      }
      // let timers and I/O (abort requests, hooks) run between steps
      await new Promise((r) => setImmediate(r));
    }
    if (leads) {
      lastEval = this.evaluate();
      await hooks.onEval?.(lastEval);
    }
    await hooks.onCheckpoint?.(this.step, () => this.checkpoint());
    return { status: 'completed', step: this.step, lastEval };
  }

  /** One optimizer step over grad_accum micro-batches, its products in the run's precision. */
  trainStep(): StepMetrics {
    return withPrecision(this.config.precision, () => this.stepInPrecision());
  }

  private stepInPrecision(): StepMetrics {
    const c = this.config;
    const t0 = performance.now();
    const lr = learningRate(this.step, c.schedule);
    const params = this.model.trainable();
    const vars = [...params.values()];
    const byVarName = new Map(vars.map((v) => [v.name, v]));
    const nameOf = new Map([...params].map(([n, v]) => [v.name, n]));
    const sum = new Map<string, tf.Tensor>();
    let loss = 0;
    // data parallelism: the last micro-batch's backward pass sends the step's gradients as they
    // become final (where the group can queue allreduces), else they go after it
    let streamed = null as GradientStream | null; // (set inside the closure below)
    const shape = this.windowShape(this.step);
    const rewards = { chosen: 0, rejected: 0, accurate: 0, pairs: 0 };
    const tally = new ReinforcementTally();
    // the forward and backward passes read the weights' bf16 copies (bf16 precision on Crucible's
    // kernel); the optimizer below updates the float32 weights after the copies are let go
    this.bf16Weights.during(this.model.params, new Set(vars), () => {
      for (let micro = 0; micro < c.gradAccumSteps; micro++) {
        const seed = mixSeed(c.seed, this.step, micro);
        const lossOf = this.pairs
          ? this.pairLoss((this.source as PairSource).next(), rewards)
          : this.rl
            ? this.rolloutLoss((this.source as PairSource).next(), seed, tally)
            : (() => {
                const drawn = (this.source as BatchSource | PackedSource).next(shape && { B: shape.B * (this.parallel?.size ?? 1), T: shape.T });
                const batch = this.parallel ? this.parallel.shard(drawn) : drawn;
                return () => batchLoss(this.model, batch, true, seed, this.config.activationCheckpointing);
              })();
        const stream = micro === c.gradAccumSteps - 1 ? (this.parallel?.stream(params, 1) ?? null) : null;
        const onGradient = stream
          ? (vname: string, g: tf.Tensor) => {
              const name = nameOf.get(vname);
              if (name === undefined) return;
              const prev = sum.get(name); // the earlier micro-batches'
              stream.add(name, prev ? tf.tidy(() => tf.add(prev, g).dataSync() as Float32Array) : (g.dataSync() as Float32Array));
            }
          : undefined;
        const { value, grads } = variableGrads(lossOf, vars, onGradient);
        loss += (value.dataSync()[0] as number) / c.gradAccumSteps;
        value.dispose();
        if (stream) {
          // every sum is in the stream now
          for (const g of Object.values(grads)) g.dispose();
          for (const t of sum.values()) t.dispose();
          sum.clear();
          streamed = stream;
          continue;
        }
        for (const [vname, g] of Object.entries(grads)) {
          if (!byVarName.has(vname)) continue;
          const name = nameOf.get(vname) as string;
          const prev = sum.get(name);
          if (prev) {
            sum.set(name, tf.add(prev, g));
            prev.dispose();
            g.dispose();
          } else sum.set(name, g);
        }
      }
    });
    // data parallelism: every rank's sums become the sums over the ranks (the loss too), whose mean
    // every rank then steps by alike
    const ranks = this.parallel?.size ?? 1;
    if (streamed) loss = (streamed.finish(sum, [loss])[0] as number) / ranks;
    else if (this.parallel) loss = (this.parallel.allreduceSum(sum, params, [loss])[0] as number) / ranks;
    const inv = 1 / (c.gradAccumSteps * ranks);
    const gradNorm = globalNorm(sum.values()) * inv;
    const clip = c.maxGradNorm > 0 && gradNorm > c.maxGradNorm ? c.maxGradNorm / (gradNorm + 1e-6) : 1;
    this.optimizer.step(params, sum, lr, inv * clip);
    for (const g of sum.values()) g.dispose();
    this.step += 1;
    const ms = performance.now() - t0;
    // (tokens per second of the whole group)
    const tokens = this.rl ? tally.tokens : (this.pairs ? 2 : 1) * (shape ? shape.B * shape.T : c.batchSize * c.seqLen) * c.gradAccumSteps * ranks;
    const m: StepMetrics = { step: this.step, loss, lr, gradNorm, ms, tokensPerSec: (tokens * 1000) / ms };
    if (this.pairs) return { ...m, preference: preferenceMetrics(rewards) };
    return this.rl ? { ...m, reinforcement: tally.metrics() } : m;
  }

  /**
   * Samples a group of answers to each prompt `ids` with the model as it is, grades them, and
   * returns their GRPO loss as a function for variableGrads (adding the step's numbers to `tally`).
   */
  private rolloutLoss(ids: number[], seed: number, tally: ReinforcementTally): () => tf.Scalar {
    const { data } = this.rl as { data: ReinforcementData };
    const cfg = this.config.grpo as NonNullable<TrainConfig['grpo']>;
    const rng = new Rng(mixSeed(seed, 7));
    const prompts = ids.map((id) => data.train[id] as Int32Array);
    const rollouts = prompts.flatMap((p) => this.sampleAnswers(data, p, cfg.groupSize, rng));
    const scores = rollouts.map((r, i) => data.grade('train', ids[Math.floor(i / cfg.groupSize)] as number, r.text));
    const { advantages, stds } = groupAdvantages(scores, cfg.groupSize);
    tally.addGroups(
      scores,
      stds,
      rollouts.map((r) => r.tokens.length),
    );
    const batch = rolloutBatch(
      prompts,
      rollouts.map((r) => r.tokens),
      this.config.seqLen,
    );
    tally.tokens += batch.tokens;
    const ref = data.reference && cfg.klBeta > 0 ? tf.tidy(() => rolloutLogProbs(data.reference as Transformer, batch).dataSync() as Float32Array) : null;
    return () => {
      const lp = rolloutLogProbs(this.model, batch, { training: true, seed });
      // the log-probabilities as the answers were sampled: this forward's values, without their gradient
      const old = lp.dataSync() as Float32Array;
      const t = grpoTerms(lp, old, ref, advantages, batch.m, cfg);
      tally.addKl(t.kl.dataSync()[0] as number);
      return t.loss;
    };
  }

  /** The DPO loss of the training pairs `ids` (adding their rewards to `into`), as a function for variableGrads. */
  private pairLoss(ids: number[], into: { chosen: number; rejected: number; accurate: number; pairs: number }): () => tf.Scalar {
    const run = this.pairs as PreferenceRun;
    const cfg = this.config.dpo as DpoConfig;
    const batch = pairBatch(run.data.train, ids, this.config.seqLen);
    return () => {
      const { seq, lp, counts } = answerLogProbs(this.model, batch, cfg.lengthNormalize);
      const t = dpoTerms(seq, referenceFor(run.reference.train, ids), cfg, cfg.rpoAlpha > 0 ? chosenNll(lp, counts) : undefined);
      const s = rewardSums(t.chosen.dataSync() as Float32Array, t.rejected.dataSync() as Float32Array);
      into.chosen += s.chosen;
      into.rejected += s.rejected;
      into.accurate += s.accurate;
      into.pairs += s.pairs;
      return t.loss;
    };
  }

  /**
   * The batch shape at `step` during the config's shortWindows phase: the window grows linearly
   * from shortWindows.seqLen to the full length (in steps of 8 tokens), and the batch grows to keep
   * the tokens per step; afterwards undefined (the configured shape).
   */
  windowShape(step: number): { B: number; T: number } | undefined {
    const sw = this.config.shortWindows;
    const c = this.config;
    if (!sw || step >= sw.steps || sw.seqLen >= c.seqLen) return undefined;
    const hold = Math.min(sw.holdSteps ?? 0, sw.steps);
    const growth = step < hold ? 0 : (step - hold) / Math.max(1, sw.steps - hold);
    const T = Math.min(c.seqLen, Math.max(sw.seqLen, Math.round((sw.seqLen + (c.seqLen - sw.seqLen) * growth) / 8) * 8));
    if (T >= c.seqLen) return undefined;
    return { B: Math.max(1, Math.round((c.batchSize * c.seqLen) / T)), T };
  }

  /**
   * Mean loss, perplexity and token accuracy over the fixed validation batches (in the run's
   * precision). Logits over `chunkedHeadBytes` are never held: the head runs over chunks of rows.
   */
  evaluate(chunkedHeadBytes = CHUNKED_HEAD_BYTES): EvalMetrics {
    return withPrecision(this.config.precision, () => this.evaluateInPrecision(chunkedHeadBytes));
  }

  private evaluateInPrecision(chunkedHeadBytes: number): EvalMetrics {
    if (this.pairs) return this.evaluatePairs(this.pairs);
    if (this.rl) return this.evaluateRollouts(this.rl);
    let lossSum = 0;
    let correct = 0;
    let count = 0;
    for (const batch of this.evalSet) {
      const { B, T } = batch;
      const weights = batch.w ?? new Float32Array(B * T).fill(1);
      const idx = tf.tensor2d(batch.x, [B, T], 'int32');
      // [weighted loss sum, weighted hits, weight] of each chunk of rows
      const parts = forEachLogitChunk(
        this.model,
        idx,
        { packing: batch.packing },
        (logits, r0, n) => {
          const w = weights.subarray(r0, r0 + n);
          if (!w.some((x) => x > 0)) return [0, 0, 0]; // no token of this chunk counts
          const y = tf.tensor1d(batch.y.subarray(r0, r0 + n), 'int32');
          const wT = tf.tensor1d(w);
          const total = tf.sum(wT);
          const lossSum = tf.mul(crossEntropy(logits, y, wT), total);
          const hits = tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(logits, -1), y), 'float32'), wT));
          return [lossSum.dataSync()[0], hits.dataSync()[0], total.dataSync()[0]] as number[];
        },
        chunkedHeadBytes,
      );
      idx.dispose();
      for (const [l, acc, n] of parts) {
        lossSum += l as number;
        correct += acc as number;
        count += n as number;
      }
    }
    const loss = count > 0 ? lossSum / count : Number.NaN;
    return { step: this.step, loss, perplexity: Math.exp(loss), accuracy: count > 0 ? correct / count : Number.NaN, tokens: count };
  }

  /** DPO loss and rewards over the validation pairs; perplexity and token accuracy of their preferred answers. */
  private evaluatePairs(run: PreferenceRun): EvalMetrics {
    const cfg = this.config.dpo as DpoConfig;
    const B = this.config.batchSize;
    const sums = { chosen: 0, rejected: 0, accurate: 0, pairs: 0 };
    let lossSum = 0;
    let nllSum = 0;
    let hits = 0;
    let tokens = 0;
    for (let start = 0; start < run.evalIds.length; start += B) {
      const ids = run.evalIds.slice(start, start + B);
      const batch = pairBatch(run.data.val, ids, this.config.seqLen);
      const [loss, chosen, rejected, nll, hit, n] = tf.tidy(() => {
        const { seq, lp, counts, logits, positions } = answerLogProbs(this.model, batch, cfg.lengthNormalize);
        const t = dpoTerms(seq, referenceFor(run.reference.val, ids), cfg, cfg.rpoAlpha > 0 ? chosenNll(lp, counts) : undefined);
        // the preferred answers' tokens: those in the first B rows (the logits are at the answer positions)
        const rows = ids.length * batch.T;
        const m = tf.tensor1d(positions.map((p) => (p < rows ? 1 : 0)));
        const right = tf.cast(
          tf.equal(
            tf.argMax(logits, -1),
            tf.tensor1d(
              Int32Array.from(positions, (p) => batch.y[p] as number),
              'int32',
            ),
          ),
          'float32',
        );
        return [
          t.loss.dataSync()[0],
          t.chosen.dataSync(),
          t.rejected.dataSync(),
          -(tf.sum(lp.slice([0, 0], [ids.length, -1])).dataSync()[0] as number),
          tf.sum(tf.mul(right, m)).dataSync()[0],
          tf.sum(m).dataSync()[0],
        ] as [number, Float32Array, Float32Array, number, number, number];
      });
      const s = rewardSums(chosen, rejected);
      lossSum += loss * s.pairs;
      sums.chosen += s.chosen;
      sums.rejected += s.rejected;
      sums.accurate += s.accurate;
      sums.pairs += s.pairs;
      nllSum += nll;
      hits += hit;
      tokens += n;
    }
    const nll = tokens > 0 ? nllSum / tokens : Number.NaN;
    return {
      step: this.step,
      loss: sums.pairs > 0 ? lossSum / sums.pairs : Number.NaN,
      perplexity: Math.exp(nll),
      accuracy: tokens > 0 ? hits / tokens : Number.NaN,
      tokens,
      preference: preferenceMetrics(sums),
    };
  }

  /** `count` answers to one prompt, sampled with the run's temperature, budget and stops. */
  private sampleAnswers(data: ReinforcementData, prompt: Int32Array, count: number, rng: Rng): Rollout[] {
    const cfg = this.config.grpo as NonNullable<TrainConfig['grpo']>;
    return sampleGroup(this.model, this.tokenizer, prompt, {
      count,
      maxNewTokens: cfg.maxCompletionTokens,
      temperature: cfg.temperature,
      stopTokens: data.stopTokens,
      stopText: data.stopText,
      rng,
    });
  }

  /**
   * Answers sampled for the validation prompts (eval_samples each, with the same seed at every
   * evaluation), graded: their mean reward, minus it as the loss, and the perplexity and argmax
   * share of their tokens under the model that sampled them.
   */
  private evaluateRollouts(run: { data: ReinforcementData; evalIds: number[] }): EvalMetrics {
    const cfg = this.config.grpo as NonNullable<TrainConfig['grpo']>;
    const rng = new Rng(mixSeed(this.config.seed, 3));
    const tally = new ReinforcementTally();
    let logprob = 0;
    let hits = 0;
    let tokens = 0;
    for (const id of run.evalIds) {
      const rollouts = this.sampleAnswers(run.data, run.data.val[id] as Int32Array, cfg.evalSamples, rng);
      const scores = rollouts.map((r) => run.data.grade('val', id, r.text));
      tally.addGroups(
        scores,
        [],
        rollouts.map((r) => r.tokens.length),
      );
      for (const r of rollouts) {
        logprob += r.logprob;
        hits += r.argmaxHits;
        tokens += r.tokens.length;
      }
    }
    const m = tally.metrics();
    return {
      step: this.step,
      loss: -m.reward,
      perplexity: Math.exp(tokens > 0 ? -logprob / tokens : 0),
      accuracy: tokens > 0 ? hits / tokens : 0,
      tokens,
      reinforcement: m,
    };
  }

  /** The full training state as checkpoint bytes (see checkpoint.ts for the format). */
  checkpoint(): Uint8Array {
    return encodeCheckpoint({
      model: this.model,
      tokenizer: this.tokenizer,
      train: this.config,
      state: { step: this.step, dataRng: this.source.state(), optimizerT: this.optimizer.t },
      optimizer: this.optimizer,
      baseModel: this.baseModel,
      reference: this.pairs?.reference,
    });
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

/** The loss of a batch; logits over `chunkedHeadBytes` are never held (the head runs in chunks of rows with the loss). */
export function batchLoss(
  model: Transformer,
  batch: Batch,
  training: boolean,
  seed = 0,
  checkpointActivations = false,
  chunkedHeadBytes = CHUNKED_HEAD_BYTES,
): tf.Scalar {
  return tf.tidy(() => {
    const { B, T } = batch;
    const idx = tf.tensor2d(batch.x, [B, T], 'int32');
    const opts = { training, seed, checkpointActivations, packing: batch.packing };
    const w = batch.w ? tf.tensor1d(batch.w) : undefined;
    const y = tf.tensor1d(batch.y, 'int32');
    const viaHead = largeHeadInput(model, idx, opts, chunkedHeadBytes);
    if (viaHead) return linearCrossEntropy(viaHead.h, viaHead.head as tf.Tensor2D, y, w, { headTrainable: model.trainable().has(viaHead.name) });
    return crossEntropy(model.forwardFlat(idx, opts), y, w);
  });
}

function maskingFor(tokenizer: Tokenizer, probability: number): MaskingConfig {
  const maskId = tokenizer.special('mask');
  if (maskId === undefined) throw new Error('the mlm objective needs a tokenizer with the <|mask|> special token');
  return { probability, maskId, vocabSize: tokenizer.vocabSize, specialIds: new Set(tokenizer.specialTokens.values()) };
}
