import { describe, expect, it } from 'vitest';
import { jsonTooDeep, MAX_JSON_DEPTH } from './json-depth';
import { findUnsafeString } from './text';

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('jsonTooDeep', () => {
  it('counts arrays and objects, up to the limit and one past it', () => {
    expect(jsonTooDeep(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonTooDeep(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(jsonTooDeep('{"a":{"b":[1,{"c":2}]}}', 4)).toBe(false);
    expect(jsonTooDeep('{"a":{"b":[1,{"c":2}]}}', 3)).toBe(true);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonTooDeep(`{"t":"${'['.repeat(500)}"}`, 2)).toBe(false);
    expect(jsonTooDeep(`{"t":"\\"${'{'.repeat(500)}"}`, 2)).toBe(false);
    expect(jsonTooDeep(`{"t":"\\\\", "x":${nested(3)}}`, 3)).toBe(true); // the string ends after an escaped backslash
  });

  it('scans a line nested 100,000 deep in linear time, where walking the parsed value recursively overflows the stack', () => {
    const text = `{"text":"a","x":${nested(100_000)}}`;
    expect(jsonTooDeep(text)).toBe(true);
    const value = JSON.parse(text);
    expect(() => JSON.stringify(value)).toThrow(RangeError); // what the depth limit protects
    expect(findUnsafeString(value)).toBeNull(); // iterative: no overflow
  });
});
