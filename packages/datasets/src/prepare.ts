// The data preparation pipeline: records in (lines of JSONL, paragraphs of plain text), cleaned
// records out, and a report with counts per rule and a few examples of each change. Rules run in
// a fixed order: Unicode NFC, control characters, whitespace, personal data, then exact and
// near-duplicate removal (on the cleaned text, so copies that differ only in what was cleaned are
// caught). Memory: one record, plus a digest per kept record (exact) and its shingle set (near).
import { createHash } from 'node:crypto';
import {
  type FileFormat,
  jsonTooDeep,
  MAX_JSON_DEPTH,
  type PreparationExample,
  type PreparationReport,
  type PreparationRules,
  type PreparationRulesRequest,
  type RuleName,
} from '@crucible/domain';
import { normalizeUnicode, normalizeWhitespace, removeControlCharacters } from './clean';
import { NEAR_DUP_DEFAULTS, NearDuplicateIndex } from './minhash';
import { PII_TYPES, type PiiType, scrubPii } from './pii';
import { isJsonlName } from './validate';

/** A source the pipeline cannot prepare (the file is then marked `error` with this message, not retried). */
export class PreparationError extends Error {
  override readonly name = 'PreparationError';
}

/** Every rule on: what `prepare` does when a request names no rules. */
export const DEFAULT_RULES: PreparationRules = {
  normalize_unicode: true,
  remove_control_characters: true,
  normalize_whitespace: true,
  deduplicate: true,
  near_duplicates: { threshold: NEAR_DUP_DEFAULTS.threshold, unit: NEAR_DUP_DEFAULTS.unit, n: NEAR_DUP_DEFAULTS.n },
  scrub_pii: { types: [...PII_TYPES] },
};

/** A request's rules (each optional; `true` takes a rule's defaults) over the defaults. */
export function resolveRules(req: PreparationRulesRequest = {}): PreparationRules {
  const nd = req.near_duplicates;
  const pii = req.scrub_pii;
  const ndDefaults = DEFAULT_RULES.near_duplicates as Exclude<PreparationRules['near_duplicates'], false>;
  return {
    normalize_unicode: req.normalize_unicode ?? DEFAULT_RULES.normalize_unicode,
    remove_control_characters: req.remove_control_characters ?? DEFAULT_RULES.remove_control_characters,
    normalize_whitespace: req.normalize_whitespace ?? DEFAULT_RULES.normalize_whitespace,
    deduplicate: req.deduplicate ?? DEFAULT_RULES.deduplicate,
    near_duplicates: nd === false ? false : nd === true || nd === undefined ? { ...ndDefaults } : { ...ndDefaults, ...nd },
    scrub_pii: pii === false ? false : { types: pii === true || pii === undefined || !pii.types ? [...PII_TYPES] : [...pii.types] },
  };
}

export const EXAMPLES_PER_RULE = 3;
const SNIPPET = 160;

interface Rec {
  line: number;
  /** Plain text: the paragraph; JSONL: the parsed object. */
  text?: string;
  row?: Record<string, unknown>;
}

/**
 * Feed the input's lines in order with `line`; `end` flushes. Output lines go to `emit` (JSONL:
 * one record per line; plain text: paragraphs separated by a blank line).
 */
export class Preparer {
  private readonly counts: Record<RuleName, number> = {
    normalize_unicode: 0,
    remove_control_characters: 0,
    normalize_whitespace: 0,
    scrub_pii: 0,
    exact_duplicates: 0,
    near_duplicates: 0,
  };
  private readonly pii = Object.fromEntries(PII_TYPES.map((t) => [t, 0])) as Record<PiiType, number>;
  private readonly examples: PreparationExample[] = [];
  private readonly seen = new Map<string, number>();
  private readonly near: NearDuplicateIndex | undefined;
  private controlRemoved = 0;
  private recordsIn = 0;
  private recordsOut = 0;
  private paragraph: string[] = [];
  private paragraphLine = 0;

  constructor(
    readonly format: FileFormat,
    readonly rules: PreparationRules,
    private readonly emit: (line: string) => void,
  ) {
    if (rules.near_duplicates) this.near = new NearDuplicateIndex({ ...NEAR_DUP_DEFAULTS, ...rules.near_duplicates });
  }

  line(text: string, number: number): void {
    if (this.format === 'text') {
      if (text.trim() === '') this.flushParagraph();
      else {
        if (this.paragraph.length === 0) this.paragraphLine = number;
        this.paragraph.push(text);
      }
      return;
    }
    if (!text.trim()) return;
    // sources are validated, which refuses such lines; a file validated before that rule is refused here
    if (jsonTooDeep(text)) throw new PreparationError(`line ${number} nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
    this.record({ line: number, row: JSON.parse(text) as Record<string, unknown> });
  }

  end(): PreparationReport {
    this.flushParagraph();
    return {
      rules: this.rules,
      format: this.format,
      records_in: this.recordsIn,
      records_out: this.recordsOut,
      counts: this.counts,
      control_characters_removed: this.controlRemoved,
      pii: this.pii,
      examples: this.examples,
    };
  }

  private flushParagraph(): void {
    if (this.paragraph.length === 0) return;
    const text = this.paragraph.join('\n');
    this.paragraph = [];
    this.record({ line: this.paragraphLine, text });
  }

  private example(e: PreparationExample): void {
    if (this.examples.filter((x) => x.rule === e.rule).length < EXAMPLES_PER_RULE) this.examples.push(e);
  }

  /** Applies the cleaning rules to one string; counts into `changed`. */
  private clean(s: string, changed: Set<RuleName>, piiFound: Set<PiiType>, trimEnds: boolean): string {
    let out = s;
    const step = (rule: RuleName, fn: (x: string) => string) => {
      const next = fn(out);
      if (next !== out) changed.add(rule);
      out = next;
    };
    if (this.rules.normalize_unicode) step('normalize_unicode', normalizeUnicode);
    if (this.rules.remove_control_characters) {
      step('remove_control_characters', (x) => {
        const y = removeControlCharacters(x);
        this.controlRemoved += x.length - y.length;
        return y;
      });
    }
    if (this.rules.normalize_whitespace) step('normalize_whitespace', (x) => normalizeWhitespace(x, trimEnds));
    const pii = this.rules.scrub_pii;
    if (pii) {
      step('scrub_pii', (x) => {
        const r = scrubPii(x, pii.types);
        for (const f of r.found) {
          this.pii[f.type]++;
          piiFound.add(f.type);
        }
        return r.text;
      });
    }
    return out;
  }

  private record(rec: Rec): void {
    this.recordsIn++;
    const changed = new Set<RuleName>();
    const piiFound = new Set<PiiType>();
    let out: string;
    let content: string;
    let before: string;
    if (rec.text !== undefined) {
      before = rec.text;
      content = this.clean(rec.text, changed, piiFound, true);
      out = content;
      if (!content) return; // nothing left (only control characters or spaces)
    } else {
      const row = rec.row as Record<string, unknown>;
      before = JSON.stringify(row);
      const cleaned = mapStrings(row, (s) => this.clean(s, changed, piiFound, false));
      out = JSON.stringify(cleaned);
      content = collectStrings(cleaned).join('\n');
    }
    for (const rule of changed) {
      this.counts[rule]++;
      this.example({
        rule,
        line: rec.line,
        before: snippet(before),
        after: snippet(rec.text !== undefined ? content : out),
        ...(rule === 'scrub_pii' ? { types: [...piiFound] } : {}),
      });
    }
    if (this.rules.deduplicate) {
      const digest = createHash('sha256').update(out).digest('base64');
      const first = this.seen.get(digest);
      if (first !== undefined) {
        this.counts.exact_duplicates++;
        this.example({ rule: 'exact_duplicates', line: rec.line, duplicate_of_line: first, before: snippet(out) });
        return;
      }
      this.seen.set(digest, rec.line);
    }
    if (this.near) {
      const dup = this.near.checkAndAdd(rec.line, content);
      if (dup) {
        this.counts.near_duplicates++;
        this.example({ rule: 'near_duplicates', line: rec.line, duplicate_of_line: dup.of, similarity: round(dup.similarity), before: snippet(content) });
        return;
      }
    }
    this.recordsOut++;
    if (this.format === 'text' && this.recordsOut > 1) this.emit('');
    this.emit(out);
  }
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;
const snippet = (s: string) => (s.length > SNIPPET ? `${s.slice(0, SNIPPET)}…` : s);

function mapStrings(v: unknown, fn: (s: string) => string): unknown {
  if (typeof v === 'string') return fn(v);
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, fn));
  if (v && typeof v === 'object') {
    // roles and other keys of a chat message are names, not text: only content-like fields change
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'role' ? x : mapStrings(x, fn)]));
  }
  return v;
}

function collectStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) collectStrings(x, out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (k !== 'role') collectStrings(x, out);
  return out;
}

/**
 * The name of a file prepared from `source`: `requested`, or `<name>.prepared.<ext>`; a JSONL
 * file's name always ends in .jsonl, since the name tells validation that it is JSONL.
 */
export function preparedFileName(source: string, format: FileFormat, requested?: string): string {
  const dot = source.lastIndexOf('.');
  const name = requested ?? (dot > 0 ? `${source.slice(0, dot)}.prepared${source.slice(dot)}` : `${source}.prepared`);
  return format !== 'text' && !isJsonlName(name) ? `${name}.jsonl` : name;
}

/** Runs the pipeline over a whole text (tests, small inputs). */
export function prepareText(input: string, format: FileFormat, rules: PreparationRules): { output: string; report: PreparationReport } {
  const lines: string[] = [];
  const p = new Preparer(format, rules, (l) => lines.push(l));
  input.split('\n').forEach((l, i) => {
    p.line(l.replace(/\r$/, ''), i + 1);
  });
  const report = p.end();
  return { output: lines.length ? `${lines.join('\n')}\n` : '', report };
}
