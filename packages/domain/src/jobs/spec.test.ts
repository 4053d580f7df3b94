import { describe, expect, it } from 'vitest';
import { CrucibleError } from '../errors';
import { finalizeSchedule, resolveHyperparameters, tokensPerStep, trainConfigFor } from './spec';

describe('resolveHyperparameters', () => {
  it('fills in every default for a pretraining job', () => {
    const h = resolveHyperparameters('pretrain', { kind: 'preset', name: 'gpt-nano' });
    expect(h).toMatchObject({
      n_epochs: 1,
      batch_size: 12,
      learning_rate: 1e-3,
      min_learning_rate: 1e-4,
      lr_scheduler: 'cosine',
      optimizer: 'adamw',
      block_size: 64,
      max_grad_norm: 1,
      tokenizer: { type: 'char' },
    });
  });

  it('applies the learning-rate multiplier and checks the result', () => {
    expect(resolveHyperparameters('pretrain', { kind: 'preset', name: 'gpt-nano' }, { learning_rate: 1e-3, learning_rate_multiplier: 2 }).learning_rate).toBe(
      2e-3,
    );
    expect(() => resolveHyperparameters('pretrain', { kind: 'preset', name: 'gpt-nano' }, { learning_rate: 0.5, learning_rate_multiplier: 4 })).toThrow(
      CrucibleError,
    );
  });

  it('matches methods to architectures', () => {
    expect(() => resolveHyperparameters('mlm', { kind: 'preset', name: 'gpt-nano' })).toThrow(/needs a bert model/);
    expect(() => resolveHyperparameters('supervised', { kind: 'preset', name: 'gpt-nano' })).toThrow(/starts from trained weights/);
    expect(resolveHyperparameters('mlm', { kind: 'preset', name: 'bert-mini' }).block_size).toBe(128);
    expect(() => resolveHyperparameters('supervised', { ...trained, blockSize: 32 }, { block_size: 64 })).toThrow(/exceeds the base model's context of 32/);
  });

  it('resolves LoRA and adapters with their defaults, only on trained gpt weights', () => {
    const lora = resolveHyperparameters('supervised', trained, {}, { type: 'lora', rank: 4 });
    expect(lora.peft).toEqual({ type: 'lora', rank: 4, alpha: 16, dropout: 0, targets: ['attn.c_attn', 'attn.c_proj'] });
    expect(lora.learning_rate).toBe(5e-3);
    expect(resolveHyperparameters('supervised', trained, {}, { type: 'adapter' }).peft).toEqual({ type: 'adapter', size: 16 });
    expect(resolveHyperparameters('supervised', trained, {}, { type: 'full' }).peft).toBeNull();
    expect(resolveHyperparameters('supervised', trained).learning_rate).toBe(1e-3);
    expect(() => resolveHyperparameters('pretrain', { kind: 'preset', name: 'gpt-nano' }, {}, { type: 'lora' })).toThrow(/adapts trained weights/);
    expect(() => resolveHyperparameters('mlm', { ...trained, arch: 'bert' }, {}, { type: 'lora' })).toThrow(/available for gpt and llama models/);
    expect(() => resolveHyperparameters('supervised', { ...trained, adapters: true })).toThrow(/cannot be merged/);
  });

  it('on llama-architecture weights: LoRA on Hugging Face module names (default q/k/v/o), no bottleneck adapters, no GPT-2 module names', () => {
    const llama = { ...trained, arch: 'llama' as const };
    expect(resolveHyperparameters('supervised', llama, {}, { type: 'lora' }).peft).toEqual({
      type: 'lora',
      rank: 8,
      alpha: 16,
      dropout: 0,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    });
    expect(resolveHyperparameters('supervised', llama, {}, { type: 'lora', target_modules: ['gate_proj', 'down_proj'] }).peft).toMatchObject({
      targets: ['gate_proj', 'down_proj'],
    });
    expect(() => resolveHyperparameters('supervised', llama, {}, { type: 'adapter' })).toThrow(/use LoRA/);
    expect(() => resolveHyperparameters('supervised', llama, {}, { type: 'lora', target_modules: ['attn.c_attn'] })).toThrow(
      /attn.c_attn is not a module of a llama model/,
    );
    expect(() => resolveHyperparameters('supervised', trained, {}, { type: 'lora', target_modules: ['q_proj'] })).toThrow(
      /q_proj is not a module of a gpt model/,
    );
    expect(resolveHyperparameters('pretrain', llama).tokenizer).toEqual({ type: 'inherited' });
    expect(() => resolveHyperparameters('mlm', llama)).toThrow(/needs a bert model/);
  });

  it('activation checkpointing: off by default, on for llama-architecture weights when asked, refused elsewhere naming the field', () => {
    const llama = { ...trained, arch: 'llama' as const };
    const on = resolveHyperparameters('supervised', llama, { activation_checkpointing: true });
    expect(on.activation_checkpointing).toBe(true);
    expect(trainConfigFor(on, 'supervised', { maxSteps: 10, warmupSteps: 1 }, 1).activationCheckpointing).toBe(true);
    expect(resolveHyperparameters('supervised', llama).activation_checkpointing).toBe(false);
    try {
      resolveHyperparameters('supervised', trained, { activation_checkpointing: true });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CrucibleError);
      expect((err as CrucibleError).param).toBe('method.supervised.hyperparameters.activation_checkpointing');
      expect((err as CrucibleError).message).toMatch(/applies to llama-architecture models.*this model is gpt/);
    }
  });

  it('continues pretraining from trained weights with their tokenizer', () => {
    expect(resolveHyperparameters('pretrain', trained).tokenizer).toEqual({ type: 'inherited' });
    expect(() => resolveHyperparameters('pretrain', trained, { tokenizer: { type: 'char' } })).toThrow(/reuses their tokenizer/);
  });
});

const trained = { kind: 'trained', id: 'ft:x', arch: 'gpt', blockSize: 64, source: 'model' } as const;

describe('trainConfigFor', () => {
  it('gives masked-LM jobs the short-window start, and causal jobs none', () => {
    const mlm = resolveHyperparameters('mlm', { kind: 'preset', name: 'bert-mini' });
    expect(trainConfigFor(mlm, 'mlm', { maxSteps: 800, warmupSteps: 80 }, 1).shortWindows).toEqual({ seqLen: 32, holdSteps: 200, steps: 400 });
    const gpt = resolveHyperparameters('pretrain', { kind: 'preset', name: 'gpt-micro' });
    expect(trainConfigFor(gpt, 'pretrain', { maxSteps: 800, warmupSteps: 80 }, 1).shortWindows).toBeUndefined();
  });
});

describe('finalizeSchedule', () => {
  it('derives max_steps from epochs and warmup from a ratio or the default', () => {
    const h = resolveHyperparameters('pretrain', { kind: 'preset', name: 'gpt-nano' }, { n_epochs: 2, batch_size: 4, block_size: 10 });
    // 2 epochs of 1000 tokens at 4 x 10 tokens per step = 50 steps; default warmup min(100, 10%) = 5
    expect(finalizeSchedule(h, { size: 1000, examples: 100 })).toEqual({ maxSteps: 50, warmupSteps: 5, nEpochs: 2 });
    expect(finalizeSchedule({ ...h, warmup_ratio: 0.2 }, { size: 1000, examples: 100 })).toEqual({ maxSteps: 50, warmupSteps: 10, nEpochs: 2 });
    expect(finalizeSchedule({ ...h, max_steps: 7, warmup_steps: 3 }, { size: 1000, examples: 100 })).toEqual({ maxSteps: 7, warmupSteps: 3, nEpochs: 2 });
  });

  it('n_epochs auto: one pass for pretraining; for fine-tuning 3, more on small data (100 steps), fewer on large (25,000 examples)', () => {
    expect(resolveHyperparameters('pretrain', { kind: 'preset', name: 'gpt-nano' }).n_epochs).toBe(1);
    // supervised, 8 x 16 = 128 tokens per step
    const h = resolveHyperparameters('supervised', trained, { batch_size: 8, block_size: 16 });
    expect(h.n_epochs).toBe('auto');
    // 200 short examples in 6,400 tokens: 50 steps an epoch; 3 passes make 150 steps
    expect(finalizeSchedule(h, { size: 6400, examples: 200 })).toMatchObject({ nEpochs: 3, maxSteps: 150 });
    // 12 steps an epoch: ceil(100 / 12) = 9 passes, 108 steps
    expect(finalizeSchedule(h, { size: 12 * 128, examples: 40 })).toMatchObject({ nEpochs: 9, maxSteps: 108 });
    // less than a step an epoch: capped at 25 passes, ceil(25 x 100 / 128) = 20 steps
    expect(finalizeSchedule(h, { size: 100, examples: 3 })).toMatchObject({ nEpochs: 25, maxSteps: 20 });
    // 10,000 examples: floor(25,000 / 10,000) = 2 passes; 40,000: at least 1
    expect(finalizeSchedule(h, { size: 10_000 * 128, examples: 10_000 })).toMatchObject({ nEpochs: 2, maxSteps: 20_000 });
    expect(finalizeSchedule(h, { size: 40_000 * 128, examples: 40_000 })).toMatchObject({ nEpochs: 1 });
    // a number given is kept
    expect(finalizeSchedule({ ...h, n_epochs: 4 }, { size: 100, examples: 3 })).toMatchObject({ nEpochs: 4, maxSteps: 4 });
  });
});

describe('the reinforcement method', () => {
  const grader = { type: 'string_check', name: 'sum', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'eq' } as const;

  it('resolves GRPO settings with their defaults (group_size x compute_multiplier), counts steps by prompts and rows by groups', () => {
    const h = resolveHyperparameters(
      'reinforcement',
      trained,
      { batch_size: 4, block_size: 16, compute_multiplier: 1.5, eval_interval: 'auto' },
      undefined,
      grader,
    );
    expect(h.reinforcement).toEqual({
      grader,
      group_size: 12,
      kl_beta: 0.04,
      temperature: 1,
      max_completion_tokens: 64,
      eval_samples: 1,
      compute_multiplier: 1.5,
    });
    expect(h.eval_interval).toBe(250);
    // 2 epochs of 40 prompts at 4 prompts per step
    expect(finalizeSchedule({ ...h, n_epochs: 2 }, { size: 40, examples: 40 }).maxSteps).toBe(20);
    expect(tokensPerStep(h)).toBe(12 * 4 * 16);
    const config = trainConfigFor(h, 'reinforcement', { maxSteps: 20, warmupSteps: 2 }, 1);
    expect(config.objective).toBe('grpo');
    expect(config.grpo).toEqual({ groupSize: 12, klBeta: 0.04, clipEpsilon: 0.2, temperature: 1, maxCompletionTokens: 64, evalSamples: 1 });
  });

  it('needs a grader, trained weights and no reasoning effort; its settings belong to it alone', () => {
    expect(() => resolveHyperparameters('reinforcement', trained)).toThrow(/needs a grader/);
    expect(() => resolveHyperparameters('reinforcement', { kind: 'preset', name: 'gpt-nano' }, {}, undefined, grader)).toThrow(/starts from trained weights/);
    expect(() => resolveHyperparameters('reinforcement', trained, { reasoning_effort: 'high' }, undefined, grader)).toThrow(/reasoning models/);
    expect(resolveHyperparameters('reinforcement', trained, { reasoning_effort: 'default' }, undefined, grader).reinforcement?.group_size).toBe(8);
    expect(() => resolveHyperparameters('supervised', trained, { group_size: 4 })).toThrow(/group_size applies to reinforcement jobs/);
    expect(() => resolveHyperparameters('reinforcement', trained, {}, undefined, { ...grader, type: 'python', source: '' } as never)).toThrow(/sandbox/);
  });
});
