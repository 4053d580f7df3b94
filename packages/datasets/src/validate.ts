// Streaming validation of an uploaded dataset. Bytes go in as they arrive (any chunking); memory
// stays at one line plus the report. Every problem is collected with its 1-based line, the field
// and a reason (the first `MAX_REPORTED_PROBLEMS`, and a total count), the format is detected,
// and a length histogram is built for the statistics.
import {
  type DatasetProblem,
  type FileFormat,
  type FileOutcome,
  findUnsafeString,
  jsonTooDeep,
  type LengthHistogram,
  MAX_JSON_DEPTH,
  type ProblemCode,
  PURPOSE_FORMATS,
  type ValidationReport,
} from '@crucible/domain';
import { LineSplitter } from './lines';

export const MAX_REPORTED_PROBLEMS = 100;

export interface ValidationLimits {
  /** Longest line accepted, in bytes. */
  maxLineBytes: number;
  /** Fewest examples (records) a file must hold. */
  minExamples: number;
  /** Largest file accepted, in bytes. */
  maxBytes: number;
}

const FORMAT_NAMES: Record<FileFormat, string> = {
  text: 'plain text',
  jsonl_text: '{"text"}',
  jsonl_prompt_completion: '{"prompt", "completion"}',
  jsonl_chat: '{"messages"} chat (ending in the assistant\'s answer)',
  jsonl_preference: '{"input", "preferred_output", "non_preferred_output"}',
  jsonl_reinforcement: '{"messages"} prompt (ending in a user message, for reinforcement)',
};
const CHAT_ROLES = new Set(['system', 'developer', 'user', 'assistant']);

/** Whether a file name says JSON Lines (otherwise the file is plain text). */
export const isJsonlName = (filename: string) => /\.jsonl?$/i.test(filename);

/** Power-of-two length histogram, built incrementally. */
export class Histogram {
  private readonly counts: number[] = [];
  constructor(readonly unit: 'characters' | 'tokens') {}
  add(length: number): void {
    const b = length <= 1 ? 0 : Math.ceil(Math.log2(length));
    while (this.counts.length <= b) this.counts.push(0);
    this.counts[b] = (this.counts[b] ?? 0) + 1;
  }
  toJSON(): LengthHistogram {
    return { unit: this.unit, buckets: this.counts.map((count, b) => ({ le: 2 ** b, count })) };
  }
}

export class DatasetValidator {
  private readonly splitter: LineSplitter;
  private readonly jsonl: boolean;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });
  private readonly histogram = new Histogram('characters');
  private readonly problems: DatasetProblem[] = [];
  private problemCount = 0;
  private format: FileFormat | null = null;
  private formatLine = 0;
  private records = 0;
  private characters = 0;
  private bytes = 0;
  private lines = 0;

  constructor(
    filename: string,
    private readonly purpose: string,
    private readonly limits: ValidationLimits,
  ) {
    this.splitter = new LineSplitter(limits.maxLineBytes);
    this.jsonl = isJsonlName(filename);
    if (!this.jsonl) this.format = 'text';
  }

  push(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    for (const line of this.splitter.push(chunk)) this.line(line.number, line.bytes, line.length, line.tooLong);
  }

  end(): ValidationReport {
    for (const line of this.splitter.end()) this.line(line.number, line.bytes, line.length, line.tooLong);
    const { limits } = this;
    if (this.bytes > limits.maxBytes) this.problem(null, 'file', 'file_too_large', `the file is ${this.bytes} bytes; the limit is ${limits.maxBytes}`);
    if (this.records === 0 && this.problemCount === 0) this.problem(null, 'file', 'empty_file', 'the file holds no examples (it is empty or blank)');
    else if (this.records < limits.minExamples && (this.records > 0 || this.problemCount === 0)) {
      this.problem(null, 'file', 'too_few_examples', `the file holds ${this.records} example(s); at least ${limits.minExamples} are required`);
    }
    const accepted = (PURPOSE_FORMATS as Record<string, readonly FileFormat[] | undefined>)[this.purpose];
    if (this.format && accepted && !accepted.includes(this.format)) {
      this.problem(
        null,
        'purpose',
        'purpose_mismatch',
        `purpose ${this.purpose} needs ${accepted.map((f) => FORMAT_NAMES[f]).join(' or ')} data, but the file is ${FORMAT_NAMES[this.format]}${this.format === 'text' ? ' (name JSON Lines files .jsonl)' : ''}`,
      );
    }
    return {
      format: this.format,
      records: this.records,
      lines: this.lines,
      bytes: this.bytes,
      characters: this.characters,
      length_histogram: this.histogram.toJSON(),
      problems: this.problems,
      problem_count: this.problemCount,
      limits: { max_line_bytes: limits.maxLineBytes, min_examples: limits.minExamples, max_bytes: limits.maxBytes },
    };
  }

  private problem(line: number | null, field: string | null, code: ProblemCode, message: string): void {
    this.problemCount++;
    if (this.problems.length < MAX_REPORTED_PROBLEMS) this.problems.push({ line, field, code, message });
  }

  private line(n: number, bytes: Uint8Array, length: number, tooLong: boolean): void {
    this.lines = n;
    if (tooLong) {
      this.problem(n, null, 'line_too_long', `line ${n} is ${length} bytes; the limit is ${this.limits.maxLineBytes} (MAX_LINE_BYTES)`);
      return;
    }
    let text: string;
    try {
      text = this.utf8.decode(bytes);
    } catch {
      this.problem(n, null, 'invalid_utf8', `line ${n} is not valid UTF-8`);
      return;
    }
    if (text.includes('\u0000')) {
      this.problem(n, null, 'binary_data', `line ${n} holds NUL bytes: the file looks binary, not text`);
      return;
    }
    if (!this.jsonl) {
      if (text.trim().length === 0) return;
      this.records++;
      this.characters += text.length;
      this.histogram.add(text.length);
      return;
    }
    const trimmed = text.trim();
    if (!trimmed) return;
    if (jsonTooDeep(trimmed)) {
      this.problem(n, null, 'too_deep', `line ${n} nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
      return;
    }
    let row: unknown;
    try {
      row = JSON.parse(trimmed);
    } catch (err) {
      this.problem(n, null, 'invalid_json', `line ${n} is not valid JSON: ${(err as Error).message}`);
      return;
    }
    this.record(n, row);
  }

  private record(n: number, row: unknown): void {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      this.problem(n, null, 'not_an_object', `line ${n} is not a JSON object`);
      return;
    }
    const r = row as Record<string, unknown>;
    // escapes can spell what the raw bytes may not: \u0000, a lone surrogate
    const unsafe = findUnsafeString(r);
    if (unsafe) {
      this.problem(n, unsafe.path, 'invalid_string', `line ${n}: ${unsafe.path} ${unsafe.problem}`);
      return;
    }
    let format: FileFormat;
    let chars = 0;
    const before = this.problemCount;
    if ('preferred_output' in r || 'non_preferred_output' in r) {
      format = 'jsonl_preference';
      chars = this.preference(n, r);
    } else if ('messages' in r && endsWithUser(r.messages)) {
      // OpenAI's reinforcement data: the prompt, and any other fields for the grader ({{item.*}})
      format = 'jsonl_reinforcement';
      chars = this.messages(n, r.messages, 'messages');
    } else if ('messages' in r) {
      format = 'jsonl_chat';
      chars = this.chat(n, r.messages);
    } else if ('prompt' in r || 'completion' in r) {
      format = 'jsonl_prompt_completion';
      for (const field of ['prompt', 'completion'] as const) {
        const v = r[field];
        if (typeof v !== 'string') this.problem(n, field, 'invalid_field', `line ${n}: "${field}" must be a string, got ${describe(v)}`);
        else chars += v.length;
      }
      if (typeof r.completion === 'string' && r.completion.length === 0) {
        this.problem(n, 'completion', 'invalid_field', `line ${n}: "completion" is empty (nothing to learn)`);
      }
    } else if ('text' in r) {
      format = 'jsonl_text';
      if (typeof r.text !== 'string') this.problem(n, 'text', 'invalid_field', `line ${n}: "text" must be a string, got ${describe(r.text)}`);
      else if (r.text.length === 0) this.problem(n, 'text', 'invalid_field', `line ${n}: "text" is empty`);
      else chars = r.text.length;
    } else {
      this.problem(
        n,
        null,
        'unknown_shape',
        `line ${n} has none of "text", "prompt"/"completion", "messages" or "input"/"preferred_output"/"non_preferred_output"`,
      );
      return;
    }
    if (this.format === null) {
      this.format = format;
      this.formatLine = n;
    } else if (format !== this.format) {
      this.problem(
        n,
        null,
        'mixed_formats',
        `line ${n} is a ${FORMAT_NAMES[format]} record but line ${this.formatLine} set the file's format to ${FORMAT_NAMES[this.format]}`,
      );
      return;
    }
    if (this.problemCount > before) return;
    this.records++;
    this.characters += chars;
    this.histogram.add(chars);
  }

  /**
   * Checks a preference pair (OpenAI's DPO format): input.messages, the conversation so far, and
   * preferred_output and non_preferred_output, each exactly one assistant message; returns the
   * characters of all three.
   */
  private preference(n: number, r: Record<string, unknown>): number {
    const input = r.input;
    let chars = 0;
    if (typeof input !== 'object' || input === null || Array.isArray(input) || !('messages' in input)) {
      this.problem(n, 'input', 'invalid_field', `line ${n}: "input" must be an object {messages: [...]}, got ${describe(input)}`);
    } else chars += this.messages(n, (input as { messages: unknown }).messages, 'input.messages');
    for (const field of ['preferred_output', 'non_preferred_output'] as const) {
      const out = r[field];
      if (!Array.isArray(out) || out.length !== 1) {
        this.problem(
          n,
          field,
          'invalid_field',
          `line ${n}: "${field}" must hold exactly one assistant message, got ${Array.isArray(out) ? `${out.length} messages` : describe(out)}`,
        );
        continue;
      }
      const before = this.problemCount;
      chars += this.messages(n, out, field);
      const m = out[0] as { role?: unknown; content?: unknown };
      if (this.problemCount > before) continue;
      if (m.role !== 'assistant')
        this.problem(n, `${field}[0].role`, 'invalid_field', `line ${n}: ${field}[0].role must be assistant, got ${describe(m.role)}`);
      else if (m.content === '') this.problem(n, `${field}[0].content`, 'invalid_field', `line ${n}: ${field}[0].content is empty (nothing to prefer)`);
    }
    return chars;
  }

  /** Checks a chat record's messages (the last one the assistant's answer); returns their characters. */
  private chat(n: number, messages: unknown): number {
    const chars = this.messages(n, messages, 'messages');
    const last = Array.isArray(messages) ? (messages.at(-1) as { role?: unknown } | null) : null;
    if (last && typeof last === 'object' && last.role !== 'assistant') {
      this.problem(n, `messages[${(messages as unknown[]).length - 1}].role`, 'invalid_field', `line ${n}: the last message must be the assistant's answer`);
    }
    return chars;
  }

  /** Checks a non-empty array of {role, content} at `path`; returns the characters of the contents. */
  private messages(n: number, messages: unknown, path: string): number {
    if (!Array.isArray(messages) || messages.length === 0) {
      this.problem(n, path, 'invalid_field', `line ${n}: "${path}" must be a non-empty array of {role, content}`);
      return 0;
    }
    let chars = 0;
    messages.forEach((m, i) => {
      const at = `${path}[${i}]`;
      if (typeof m !== 'object' || m === null || Array.isArray(m)) {
        this.problem(n, at, 'invalid_field', `line ${n}: ${at} must be an object {role, content}`);
        return;
      }
      const { role, content } = m as { role?: unknown; content?: unknown };
      if (typeof role !== 'string' || !CHAT_ROLES.has(role)) {
        this.problem(n, `${at}.role`, 'invalid_field', `line ${n}: ${at}.role must be one of system, user, assistant; got ${describe(role)}`);
      }
      if (typeof content !== 'string') this.problem(n, `${at}.content`, 'invalid_field', `line ${n}: ${at}.content must be a string, got ${describe(content)}`);
      else chars += content.length;
    });
    return chars;
  }
}

/** Whether a record's messages end with a user turn (a prompt whose answer is to be sampled). */
function endsWithUser(messages: unknown): boolean {
  const last = Array.isArray(messages) ? (messages.at(-1) as { role?: unknown } | null) : null;
  return typeof last === 'object' && last !== null && last.role === 'user';
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v) : `a ${typeof v}`;
}

/** Validates bytes already in memory (tests, small inputs). */
export function validateBytes(bytes: Uint8Array, filename: string, purpose: string, limits: ValidationLimits): ValidationReport {
  const v = new DatasetValidator(filename, purpose, limits);
  v.push(bytes);
  return v.end();
}

/** The report of a file whose processing could not finish: one problem of the whole file. */
export function processingFailedReport(message: string, limits: ValidationLimits): ValidationReport {
  return {
    format: null,
    records: 0,
    lines: 0,
    bytes: 0,
    characters: 0,
    length_histogram: { unit: 'characters', buckets: [] },
    problems: [{ line: null, field: 'file', code: 'processing_failed', message }],
    problem_count: 1,
    limits: { max_line_bytes: limits.maxLineBytes, min_examples: limits.minExamples, max_bytes: limits.maxBytes },
  };
}

/** What a validation report settles on its file: usable when it found no problem. */
export function validationOutcome(report: ValidationReport): FileOutcome {
  return {
    state: report.problem_count > 0 ? 'error' : 'processed',
    format: report.format ?? 'text',
    lines: report.records,
    report,
  };
}
