import type { FineTuningJob } from '@crucible/sdk';
import { describe, expect, it } from 'vitest';
import { metricRows } from './Evaluations';
import { filterJobs } from './Jobs';
import { fieldOf, methodForFormat } from './NewJob';

describe('the new-job form', () => {
  it('guesses the method from the file’s format (mlm for text on a bert model)', () => {
    expect(methodForFormat('text')).toBe('pretrain');
    expect(methodForFormat('jsonl_text', 'bert')).toBe('mlm');
    expect(methodForFormat('jsonl_chat')).toBe('supervised');
    expect(methodForFormat('jsonl_prompt_completion', 'llama')).toBe('supervised');
    expect(methodForFormat('jsonl_preference')).toBe('dpo');
    expect(methodForFormat('jsonl_reinforcement')).toBe('reinforcement');
    expect(methodForFormat(null)).toBeNull();
  });
  it('puts an API error at the field it names', () => {
    expect(fieldOf('method.supervised.hyperparameters.learning_rate')).toBe('learning_rate');
    expect(fieldOf('method.supervised.peft.rank')).toBe('peft');
    expect(fieldOf('method.reinforcement.grader.graders.a')).toBe('grader');
    expect(fieldOf('training_file')).toBe('training_file');
    expect(fieldOf(null)).toBeNull();
  });
});

describe('the job list', () => {
  const job = (id: string, status: string, model: string, method: string, created: number, running = 0) =>
    ({
      id,
      status,
      model,
      method: { type: method },
      created_at: created,
      running_seconds: running,
      fine_tuned_model: null,
      user_provided_suffix: null,
      training_file: 'file-1',
    }) as unknown as FineTuningJob;
  const jobs = [
    job('ftjob-a', 'succeeded', 'gpt-nano', 'pretrain', 1, 50),
    job('ftjob-b', 'failed', 'ft:x', 'dpo', 3, 10),
    job('ftjob-c', 'succeeded', 'ft:x', 'supervised', 2, 90),
  ];
  const all = { q: '', status: '', model: '', method: '', sort: 'created-desc' as const };
  it('searches, filters and sorts', () => {
    expect(filterJobs(jobs, all).map((j) => j.id)).toEqual(['ftjob-b', 'ftjob-c', 'ftjob-a']);
    expect(filterJobs(jobs, { ...all, sort: 'created-asc' }).map((j) => j.id)).toEqual(['ftjob-a', 'ftjob-c', 'ftjob-b']);
    expect(filterJobs(jobs, { ...all, sort: 'running-desc' }).map((j) => j.id)).toEqual(['ftjob-c', 'ftjob-a', 'ftjob-b']);
    expect(filterJobs(jobs, { ...all, q: 'FT:X' }).map((j) => j.id)).toEqual(['ftjob-b', 'ftjob-c']);
    expect(filterJobs(jobs, { ...all, status: 'succeeded', model: 'ft:x' }).map((j) => j.id)).toEqual(['ftjob-c']);
    expect(filterJobs(jobs, { ...all, method: 'dpo' }).map((j) => j.id)).toEqual(['ftjob-b']);
  });
});

describe('an evaluation’s metrics', () => {
  const base = {
    loss: 1,
    perplexity: 2.7,
    token_accuracy: 0.5,
    tokens: 10,
    records: 2,
    answer_loss: null,
    answer_perplexity: null,
    answer_token_accuracy: null,
    answer_tokens: null,
    exact_match: null,
    exact_match_examples: null,
  };
  it('come with the answers’ first for supervised data, and without them for text', () => {
    expect(metricRows(base).map(([k]) => k)[0]).toBe('loss');
    const sft = metricRows({ ...base, answer_loss: 0.5, answer_perplexity: 1.6, answer_token_accuracy: 0.9, exact_match: 0.25 });
    expect(sft.map(([k]) => k).slice(0, 5)).toEqual(['exact_match', 'answer_loss', 'answer_token_accuracy', 'answer_perplexity', 'loss']);
  });
});
