// The deployment files, checked offline (no helm, kubectl or docker here): the chart's values
// against its values.schema.json (what `helm install` and `helm template` enforce), every value a
// template reads present in values.yaml, the templates' actions balanced, and the compose file's
// multi-worker profile: two workers, each advertising the address the other reaches it at.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '../..');
const CHART = join(ROOT, 'infra/helm/crucible');
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as object;
const templates = readdirSync(join(CHART, 'templates')).map((f) => [f, readFileSync(join(CHART, 'templates', f), 'utf8')] as const);

function validator() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  return ajv.compile(schema);
}

describe('Helm chart', () => {
  it('has values that pass its schema, and a schema that refuses bad values', () => {
    const check = validator();
    expect(check(values), JSON.stringify(check.errors)).toBe(true);
    const badPool = structuredClone(values) as { workerPools: Array<Record<string, unknown>> };
    (badPool.workerPools[0] as Record<string, unknown>).name = 'CPU pool';
    expect(check(badPool)).toBe(false);
    const noQuery = structuredClone(values) as { keda: Record<string, unknown> };
    delete noQuery.keda.query;
    expect(check(noQuery)).toBe(false);
  });

  it('reads only values that exist', () => {
    const missing: string[] = [];
    for (const [file, text] of templates) {
      for (const m of text.matchAll(/\.Values((?:\.[A-Za-z][A-Za-z0-9]*)+)/g)) {
        let at: unknown = values;
        for (const k of (m[1] as string).slice(1).split('.')) at = (at as Record<string, unknown> | undefined)?.[k];
        if (at === undefined) missing.push(`${file}: .Values${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('balances every template action, and scales workers on the training queue states BullMQ keeps apart', () => {
    for (const [file, text] of templates) {
      expect(text.split('{{').length, file).toBe(text.split('}}').length);
      const opens = (text.match(/{{-?\s*(if|range|define|with)\b/g) ?? []).length;
      const ends = (text.match(/{{-?\s*end\s*-?}}/g) ?? []).length;
      expect(ends, file).toBe(opens);
    }
    const keda = values.keda as { query: string };
    for (const state of ['waiting', 'prioritized', 'delayed', 'active']) expect(keda.query).toContain(state);
    const workers = templates.find(([f]) => f === 'workers.yaml')?.[1] ?? '';
    expect(workers).toMatch(/WORKER_ADVERTISE_HOST\s+valueFrom: { fieldRef: { fieldPath: status.podIP } }/);
    expect(workers).toContain('kind: ScaledObject');
  });
});

describe('docker-compose.yml', () => {
  it('starts two workers for a two-rank job in the multi-worker profile, each advertising its own name', () => {
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { profiles?: string[]; hostname?: string; environment?: Record<string, string> }>;
    };
    const ranks = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('multi-worker'));
    expect(ranks).toHaveLength(2);
    for (const [name, s] of ranks) {
      expect(s.environment?.WORKER_ADVERTISE_HOST).toBe(name);
      expect(s.hostname).toBe(name);
      expect(s.environment?.REDIS_URL).toBe('redis://redis:6379'); // the shared environment merged in
    }
  });
});
