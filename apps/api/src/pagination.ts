// Cursor pagination as in OpenAI's API: newest first, `after` = the last id of the previous page.
export interface Page<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

export function page<T extends { id: string }>(data: T[], hasMore: boolean): Page<T> {
  return { object: 'list', data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

export const unix = (d: Date | null | undefined) => (d ? Math.floor(d.getTime() / 1000) : null);
