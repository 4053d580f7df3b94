// Grader templates: text with {{sample.output_text}} (the answer being graded) and
// {{item.<field>}} (a field of the dataset line, dotted paths for nested objects), as OpenAI's
// graders write them. Parsed once, when the job is created; rendered for every sampled answer.

/** A parsed template: literal text and references, in order. */
export type TemplatePart = { text: string } | { sample: 'output_text' } | { item: string[] };

export class TemplateError extends Error {}

const REFERENCE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const FIELD = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function parseTemplate(source: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let at = 0;
  for (const m of source.matchAll(REFERENCE)) {
    const index = m.index ?? 0;
    if (index > at) parts.push({ text: source.slice(at, index) });
    parts.push(reference(m[1] ?? ''));
    at = index + m[0].length;
  }
  if (at < source.length) parts.push({ text: source.slice(at) });
  return parts;
}

function reference(path: string): TemplatePart {
  const [root, ...rest] = path.split('.');
  if (root === 'sample') {
    if (rest.length === 1 && rest[0] === 'output_text') return { sample: 'output_text' };
    throw new TemplateError(
      `{{${path}}}: of the sample only {{sample.output_text}} is available (the model's answer as text; output_json and tool calls are not produced here)`,
    );
  }
  if (root === 'item') {
    if (rest.length === 0 || rest.some((f) => !FIELD.test(f))) throw new TemplateError(`{{${path}}}: name a field of the line, as {{item.answer}}`);
    return { item: rest };
  }
  throw new TemplateError(`{{${path}}}: a template refers to sample.output_text or item.<field>`);
}

/** The item fields a template reads (dotted paths). */
export function itemFields(parts: readonly TemplatePart[]): string[][] {
  return parts.flatMap((p) => ('item' in p ? [p.item] : []));
}

/** The value at a dotted path of a line, or undefined when the line lacks it. */
export function fieldOf(item: unknown, path: readonly string[]): unknown {
  let v: unknown = item;
  for (const f of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, f)) return undefined;
    v = (v as Record<string, unknown>)[f];
  }
  return v;
}

/** The template's text for one answer of one line (an object or array field as JSON). */
export function renderTemplate(parts: readonly TemplatePart[], sample: { output_text: string }, item: unknown): string {
  let out = '';
  for (const p of parts) {
    if ('text' in p) out += p.text;
    else if ('sample' in p) out += sample.output_text;
    else {
      const v = fieldOf(item, p.item);
      out += typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v);
    }
  }
  return out;
}
