import { describe, expect, it } from 'vitest';
import { EnvReader } from './config';
import { effectiveLimits, LIMIT_FIELDS, limitsObject, readProjectLimits } from './limits';

describe('project limits', () => {
  const defaults = readProjectLimits(new EnvReader({ RATE_LIMIT_RPM: '60', MAX_QUEUED_JOBS: '3' }));

  it('reads defaults from the environment', () => {
    expect(defaults).toMatchObject({ rateLimitRpm: 60, maxQueuedJobs: 3, maxConcurrentJobs: 2 });
  });

  it('applies a project’s overrides field by field, 0 included; malformed values are ignored', () => {
    const l = effectiveLimits(defaults, { rate_limit_rpm: 0, max_queued_jobs: 10, max_job_tokens: -5, max_prompt_chars: 1.5 } as never);
    expect(l.rateLimitRpm).toBe(0);
    expect(l.maxQueuedJobs).toBe(10);
    expect(l.maxJobTokens).toBe(defaults.maxJobTokens);
    expect(l.maxPromptChars).toBe(defaults.maxPromptChars);
    expect(effectiveLimits(defaults, null)).toEqual(defaults);
  });

  it('shows every limit under its API name', () => {
    expect(Object.keys(limitsObject(defaults)).sort()).toEqual(Object.keys(LIMIT_FIELDS).sort());
  });

  it('refuses nonsense in the environment', () => {
    const r = new EnvReader({ RATE_LIMIT_RPM: '-1' });
    readProjectLimits(r);
    expect(r.problems.join()).toMatch(/RATE_LIMIT_RPM/);
  });
});
