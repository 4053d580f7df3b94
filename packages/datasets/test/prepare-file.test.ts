// prepareFile(), the one preparation of a stored file that the API and the worker both run,
// against a real database (the file records) and a local S3 server (the objects). The expected
// outputs are written out by hand from the rules, not taken from the pipeline.
import { createHash } from 'node:crypto';
import type { FileFormat, FileRecord } from '@crucible/domain';
import { keys, type Storage } from '@crucible/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestStorage, testStorage } from '../../../tests/support/local-storage';
import { type TestStore, testStore } from '../../../tests/support/store';
import { createPreparedFile, prepareFile, resolveRules, type ValidationLimits } from '../src/index';

const LIMITS: ValidationLimits = { maxLineBytes: 1 << 20, minExamples: 1, maxBytes: 1 << 30 };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let t: TestStore;
let s3: TestStorage;
let storage: Storage;

beforeAll(async () => {
  t = await testStore('prepare_file');
  s3 = await testStorage('prepare-test');
  storage = s3.storage;
});
afterAll(async () => {
  await s3?.close();
  await t?.drop();
});

let n = 0;
/** A processed source file holding `text`. */
async function source(text: string, format: FileFormat, filename: string): Promise<FileRecord> {
  const id = `file-src-${++n}`;
  const bytes = Buffer.from(text);
  const storageKey = keys.file(t.projectId, id);
  await storage.put(storageKey, bytes);
  await t.store.files.reserve(
    { id, projectId: t.projectId, filename, purpose: 'fine-tune', bytes: bytes.length, sha256: '', format, lines: 0, storageKey },
    Number.POSITIVE_INFINITY,
  );
  await t.store.files.commit(t.projectId, id, { sha256: sha(bytes), bytes: bytes.length });
  const report = {
    format,
    records: 1,
    lines: 1,
    bytes: bytes.length,
    characters: 1,
    length_histogram: { unit: 'characters' as const, buckets: [] },
    problems: [],
    problem_count: 0,
    limits: { max_line_bytes: 1, min_examples: 1, max_bytes: 1 },
  };
  await t.store.files.settle(t.projectId, id, { state: 'processed', format, lines: 3, report });
  return (await t.store.files.get(t.projectId, id)) as FileRecord;
}

const exists = (key: string) =>
  storage.get(key).then(
    () => true,
    () => false,
  );

describe('prepareFile', () => {
  it('writes the prepared object and settles its record at its own size, with both reports', async () => {
    const src = await source('{"text": "to  be"}\n{"text": "or not"}\n{"text": "to be"}\n', 'jsonl_text', 'raw.jsonl');
    const rules = resolveRules({ near_duplicates: false, scrub_pii: false });
    const pending = await createPreparedFile(t.store.files, src, rules);
    expect(pending).toMatchObject({ state: 'pending', filename: 'raw.prepared.jsonl', bytes: src.bytes, sourceFileId: src.id });

    const done = await prepareFile({ files: t.store.files, storage }, pending, src, LIMITS);
    // whitespace runs collapse, so the third record is an exact copy of the first and is removed
    const expected = Buffer.from('{"text":"to be"}\n{"text":"or not"}\n');
    expect(done?.state).toBe('processed');
    expect(done?.report).toMatchObject({ records_in: 3, records_out: 2, counts: { normalize_whitespace: 1, exact_duplicates: 1 } });
    const stored = await storage.get(pending.storageKey);
    expect(stored.toString()).toBe(expected.toString());
    const rec = (await t.store.files.get(t.projectId, pending.id)) as FileRecord;
    expect(rec).toMatchObject({ state: 'processed', bytes: expected.length, sha256: sha(expected), lines: 2, format: 'jsonl_text' });
    expect(rec.report?.records).toBe(2);
    expect(rec.preparation?.rules).toEqual(rules);
    expect(rec.preparation?.report?.records_out).toBe(2);
  });

  it('settles a source the rules cannot prepare as error with the reason, leaving no object and holding no storage', async () => {
    const deep = `${'['.repeat(100)}${']'.repeat(100)}`;
    const src = await source(`{"text": "ok"}\n{"text": ${deep}}\n`, 'jsonl_text', 'deep.jsonl');
    const pending = await createPreparedFile(t.store.files, src, resolveRules());
    const done = await prepareFile({ files: t.store.files, storage }, pending, src, LIMITS);
    expect(done?.state).toBe('error');
    expect(done?.validation.problems[0]).toMatchObject({ code: 'processing_failed', field: 'file' });
    expect(done?.validation.problems[0]?.message).toMatch(/line 2 nests/);
    const rec = (await t.store.files.get(t.projectId, pending.id)) as FileRecord;
    expect(rec).toMatchObject({ state: 'error', bytes: 0 });
    expect(await exists(pending.storageKey)).toBe(false);
  });

  it('removes the object when the record was deleted while it was prepared', async () => {
    const src = await source('line one\n\nline two\n', 'text', 'a.txt');
    const pending = await createPreparedFile(t.store.files, src, resolveRules());
    await t.store.files.delete(t.projectId, pending.id);
    expect(await prepareFile({ files: t.store.files, storage }, pending, src, LIMITS)).toBeNull();
    expect(await exists(pending.storageKey)).toBe(false);
  });

  it('refuses a record whose held size would pass the quota, creating nothing', async () => {
    const src = await source('x\n', 'text', 'b.txt');
    const before = await t.store.files.list(t.projectId, { limit: 100 });
    const refuse = (used: number) => new Error(`over quota: ${used} used`);
    await expect(createPreparedFile(t.store.files, src, resolveRules(), { quota: { bytes: 1, refuse } })).rejects.toThrow(/over quota: \d+ used/);
    expect((await t.store.files.list(t.projectId, { limit: 100 })).items).toHaveLength(before.items.length);
  });
});
