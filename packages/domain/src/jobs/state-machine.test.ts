import { describe, expect, it } from 'vitest';
import { allowedSources, canTransition, DISPATCHED_STATUSES, isSettled, JOB_STATUSES, TERMINAL_STATUSES, TRANSITIONS } from './state-machine';

describe('job state machine', () => {
  it('has exactly the terminal statuses a job can never leave', () => {
    expect([...TERMINAL_STATUSES].sort()).toEqual(['cancelled', 'failed', 'succeeded']);
    for (const s of TERMINAL_STATUSES) for (const to of JOB_STATUSES) expect(canTransition(s, to)).toBe(false);
  });

  it.each([
    ['queued', 'validating_files', true],
    ['validating_files', 'running', true],
    ['running', 'succeeded', true],
    ['running', 'queued', true], // worker lost or shut down
    ['paused', 'queued', true], // resume
    ['queued', 'succeeded', false],
    ['queued', 'running', false],
    ['paused', 'running', false],
    ['paused', 'paused', false],
    ['succeeded', 'queued', false],
    ['cancelled', 'running', false],
    ['failed', 'queued', false],
  ] as const)('%s -> %s allowed: %s', (from, to, ok) => {
    expect(canTransition(from, to)).toBe(ok);
  });

  it('answers where a status may be reached from, narrowed by the caller', () => {
    expect(allowedSources('succeeded')).toEqual(['running']);
    expect(allowedSources('paused').sort()).toEqual(['queued', 'running', 'validating_files']);
    expect(allowedSources('queued', ['paused'])).toEqual(['paused']);
    expect(allowedSources('succeeded', ['queued'])).toEqual([]); // a caller cannot widen the table
  });

  it('every status is reachable from queued and every unfinished status can be cancelled', () => {
    const seen = new Set<string>(['queued']);
    const todo = ['queued'] as (typeof JOB_STATUSES)[number][];
    while (todo.length) {
      for (const to of TRANSITIONS[todo.pop() as keyof typeof TRANSITIONS]) {
        if (seen.has(to)) continue;
        seen.add(to);
        todo.push(to);
      }
    }
    expect([...seen].sort()).toEqual([...JOB_STATUSES].sort());
    for (const s of JOB_STATUSES.filter((x) => !TERMINAL_STATUSES.includes(x))) expect(canTransition(s, 'cancelled')).toBe(true);
    expect(DISPATCHED_STATUSES.every((s) => !isSettled(s))).toBe(true);
  });
});
