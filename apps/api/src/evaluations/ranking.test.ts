import { describe, expect, it } from 'vitest';
import { rankTable } from './service';

const row = (model: string, values: Array<number | null>) => ({ model, values, best: [] as string[] });

describe('the comparison table', () => {
  it('ranks by the first column the rows have, best first, and marks a column’s best only when one row alone has it', () => {
    const columns = ['exact_match', 'answer_loss', 'loss', 'tokens'];
    // no exact match (nothing generated): ranked by answer_loss, lower first
    const rows = [row('a', [null, 2.0, 1.5, 10]), row('b', [null, 1.0, 1.5, 10]), row('c', [null, 3.0, 1.2, 10])];
    expect(rankTable(columns, rows)).toBe('answer_loss');
    expect(rows.map((r) => r.model)).toEqual(['b', 'a', 'c']);
    expect(rows.find((r) => r.model === 'b')?.best).toEqual(['answer_loss']);
    // c alone has the lowest loss; tokens are never ranked
    expect(rows.find((r) => r.model === 'c')?.best).toEqual(['loss']);
    expect(rows.find((r) => r.model === 'a')?.best).toEqual([]);
  });

  it('marks no best on a tie, and higher is better for accuracies', () => {
    const rows = [row('a', [0.5, 2]), row('b', [0.5, 2]), row('c', [0.25, 3])];
    expect(rankTable(['exact_match', 'loss'], rows)).toBe('exact_match');
    expect(rows.map((r) => r.best)).toEqual([[], [], []]);
    expect(rows.at(-1)?.model).toBe('c');
    const single = [row('a', [0.5])];
    rankTable(['exact_match'], single);
    expect(single[0]?.best).toEqual([]); // one row is no comparison
  });
});
