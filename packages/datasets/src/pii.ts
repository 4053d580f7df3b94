// Scrubbing of personal data and secrets, replaced by typed placeholders: <EMAIL>, <PHONE>,
// <IP_ADDRESS>, <CREDIT_CARD>, <SECRET>. Candidates are found by pattern and then checked, so
// look-alikes survive: a 16-digit number that fails the Luhn check is not a card, a version
// string ("v1.2.3.4", "10.0.19041.1") is not an IP address, a number that is not a possible
// phone number (libphonenumber-js's metadata) is not a phone number.
import { PII_KINDS } from '@crucible/domain';
import { findPhoneNumbersInText } from 'libphonenumber-js/max';

/** The kinds of personal data (one list, in @crucible/domain's file schema). */
export const PII_TYPES = PII_KINDS;
export type PiiType = (typeof PII_TYPES)[number];

export const PLACEHOLDERS: Record<PiiType, string> = {
  email: '<EMAIL>',
  phone: '<PHONE>',
  ip_address: '<IP_ADDRESS>',
  credit_card: '<CREDIT_CARD>',
  secret: '<SECRET>',
};

export interface PiiFinding {
  type: PiiType;
  value: string;
}

const EMAIL = /(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])/g;

// Well-known key formats, then generic "key = value" assignments of long random-looking values.
const SECRETS = [
  /\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}/g, // OpenAI, Anthropic
  /\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/g, // Stripe
  /\bgh[pousr]_[A-Za-z0-9]{36,}/g, // GitHub
  /\bgithub_pat_[A-Za-z0-9_]{40,}/g,
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, // AWS access key ids
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, // Slack
  /\bAIza[0-9A-Za-z_-]{35}/g, // Google
  /\bhf_[A-Za-z]{30,}/g, // Hugging Face
  /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g, // JWT
];
// PEM private keys are found by scanning (pemBlocks), not by a lazy regex: one that ran from each
// of many BEGIN lines to the end of a long line would be quadratic in it.
const ASSIGNED_SECRET = /\b(?:api[_-]?key|secret|token|password|passwd|access[_-]?key)\b["']?\s*[:=]\s*["']?([A-Za-z0-9_\-+/=.]{16,})/gi;

// IPv4: four dotted numbers not glued to other dots, digits or a version marker.
const IPV4 = /(?<![\w.])(?<!\bv)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)/g;
const IPV6 =
  /(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}(?![\w:])/g;
const VERSION_WORDS = /\b(?:version|ver|release|build|v)\s*$/i;

// 13 to 19 digits, optionally grouped by single spaces or dashes.
const CARD = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g;

/** The Luhn checksum of a digit string. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits.length >= 13 && sum % 10 === 0;
}

function octetsValid(parts: string[]): boolean {
  return parts.every((p) => Number(p) <= 255 && (p.length === 1 || p[0] !== '0'));
}

/**
 * Replaces personal data of the chosen types with placeholders; returns the new text and what
 * was found (in order of rules applied: secrets, e-mail, card numbers, IP addresses, phones).
 */
export function scrubPii(text: string, types: readonly PiiType[] = PII_TYPES, defaultCountry: 'US' | undefined = 'US'): { text: string; found: PiiFinding[] } {
  const found: PiiFinding[] = [];
  const want = new Set(types);
  let s = text;
  const sub = (re: RegExp, type: PiiType, accept: (m: RegExpExecArray, before: string) => boolean = () => true) => {
    s = s.replace(re, (...args) => {
      const match = args[0] as string;
      const offset = args.at(-2) as number;
      const whole = args.at(-1) as string;
      const m = Object.assign([...args.slice(0, -2)], { index: offset, input: whole }) as unknown as RegExpExecArray;
      if (!accept(m, whole.slice(Math.max(0, offset - 12), offset))) return match;
      found.push({ type, value: match });
      return PLACEHOLDERS[type];
    });
  };
  if (want.has('secret')) {
    s = replacePemBlocks(s, (block) => {
      found.push({ type: 'secret', value: block });
      return PLACEHOLDERS.secret;
    });
    for (const re of SECRETS) sub(re, 'secret');
    s = s.replace(ASSIGNED_SECRET, (match: string, value: string) => {
      if (!/[0-9]/.test(value) || !/[A-Za-z]/.test(value) || value.startsWith('<')) return match;
      found.push({ type: 'secret', value });
      return match.replace(value, PLACEHOLDERS.secret);
    });
  }
  if (want.has('email')) sub(EMAIL, 'email');
  if (want.has('credit_card')) sub(CARD, 'credit_card', (m) => luhnValid(m[0].replace(/[ -]/g, '')));
  if (want.has('ip_address')) {
    sub(IPV4, 'ip_address', (m, before) => octetsValid(m.slice(1, 5) as string[]) && !VERSION_WORDS.test(before));
    sub(IPV6, 'ip_address', (m) => (m[0].match(/:/g)?.length ?? 0) >= 2);
  }
  if (want.has('phone')) {
    const parts: string[] = [];
    let at = 0;
    for (const p of phoneNumbers(s, defaultCountry)) {
      found.push({ type: 'phone', value: s.slice(p.startsAt, p.endsAt) });
      parts.push(s.slice(at, p.startsAt), PLACEHOLDERS.phone);
      at = p.endsAt;
    }
    if (parts.length) s = parts.join('') + s.slice(at);
  }
  return { text: s, found };
}

/** Text this long is searched for phone numbers window by window (the library's search grows faster than linearly). */
const PHONE_WINDOW = 256;
/** Longer than any phone number with its separators and extension: a number that starts in a window ends before its overlap does. */
const PHONE_OVERLAP = 96;

/**
 * Valid phone numbers in order, found in windows of PHONE_WINDOW characters (each searched with
 * PHONE_OVERLAP more, keeping the numbers that start inside it): linear in the text's length.
 */
function phoneNumbers(text: string, defaultCountry: 'US' | undefined): Array<{ startsAt: number; endsAt: number }> {
  const out: Array<{ startsAt: number; endsAt: number }> = [];
  let last = 0; // end of the last number taken: windows overlap
  for (let start = 0; start < text.length; start += PHONE_WINDOW) {
    const window = text.slice(start, start + PHONE_WINDOW + PHONE_OVERLAP);
    for (const p of findPhoneNumbersInText(window, defaultCountry ? { defaultCountry } : undefined)) {
      const startsAt = start + p.startsAt;
      if (p.startsAt >= PHONE_WINDOW || startsAt < last || !p.number.isValid()) continue;
      out.push({ startsAt, endsAt: start + p.endsAt });
      last = start + p.endsAt;
    }
  }
  return out;
}

/** Replaces each PEM private-key block (BEGIN ... PRIVATE KEY----- to its END line) in one left-to-right scan. */
function replacePemBlocks(text: string, replace: (block: string) => string): string {
  const BEGIN = /-----BEGIN [A-Z ]*PRIVATE KEY-----/g;
  const END = /-----END [A-Z ]*PRIVATE KEY-----/g;
  let out = '';
  let at = 0;
  for (;;) {
    BEGIN.lastIndex = at;
    const b = BEGIN.exec(text);
    if (!b) break;
    END.lastIndex = b.index + b[0].length;
    const e = END.exec(text);
    if (!e) break; // no END after this BEGIN: none after a later one either
    out += text.slice(at, b.index) + replace(text.slice(b.index, e.index + e[0].length));
    at = e.index + e[0].length;
  }
  return at === 0 ? text : out + text.slice(at);
}
