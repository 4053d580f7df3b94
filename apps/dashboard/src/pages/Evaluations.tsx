// Evaluations: start one (a model or checkpoint on a file), follow them, and compare every model
// evaluated on one file side by side.
import { type Crucible, CrucibleApiError } from '@crucible/sdk';
import { type FormEvent, useState } from 'react';
import { ErrorNote, Listing, Scroll, Status, when } from '../components/ui';
import { collect, useLoad } from '../hooks';

function fmt(v: number | null | undefined): string {
  return v == null ? '–' : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

export function EvaluationsPage({ crucible }: { crucible: Crucible }) {
  const evaluations = useLoad(() => collect(crucible.listEvaluations(), 200), [crucible], 3000);
  const files = useLoad(() => collect(crucible.listFiles()), [crucible]);
  const models = useLoad(() => collect(crucible.listModels()), [crucible]);
  const [error, setError] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<unknown>();
  const [compareFile, setCompareFile] = useState('');
  const comparison = useLoad(
    () => (compareFile ? crucible.compareEvaluations(compareFile) : Promise.resolve(null)),
    [crucible, compareFile, evaluations.value?.length],
  );

  async function start(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setError({});
    setFormError(null);
    try {
      await crucible.createEvaluation({ model: String(f.get('model') ?? '').trim(), file: String(f.get('file') ?? '') });
      evaluations.reload();
    } catch (err) {
      if (err instanceof CrucibleApiError && (err.param === 'model' || err.param === 'file')) setError({ [err.param]: err.error.message });
      else setFormError(err);
    }
  }
  const processed = (files.value ?? []).filter((x) => x.status === 'processed');
  const trained = (models.value ?? []).filter((m) => m.source !== 'preset');

  return (
    <section>
      <h1>Evaluations</h1>
      <form className="form inline" onSubmit={start}>
        <div className="field">
          <label htmlFor="ev-model">Model or checkpoint</label>
          <input id="ev-model" name="model" list="ev-models" required aria-invalid={error.model ? true : undefined} aria-describedby="ev-model-e" />
          <datalist id="ev-models">
            {trained.map((m) => (
              <option key={m.id} value={m.id} />
            ))}
          </datalist>
          {error.model && (
            <span className="field-error" id="ev-model-e" role="alert">
              {error.model}
            </span>
          )}
        </div>
        <div className="field">
          <label htmlFor="ev-file">File</label>
          <select id="ev-file" name="file" required defaultValue="" aria-invalid={error.file ? true : undefined} aria-describedby="ev-file-e">
            <option value="" disabled>
              Choose a file
            </option>
            {processed.map((x) => (
              <option key={x.id} value={x.id}>
                {x.filename} ({x.id})
              </option>
            ))}
          </select>
          {error.file && (
            <span className="field-error" id="ev-file-e" role="alert">
              {error.file}
            </span>
          )}
        </div>
        <button type="submit">Evaluate</button>
      </form>
      <ErrorNote error={formError} />
      <Listing load={evaluations} empty={<>No evaluations yet: pick a trained model (or a checkpoint) and a file above.</>}>
        {(list) => (
          <Scroll label="Evaluations">
            <table>
              <thead>
                <tr>
                  <th scope="col">Evaluation</th>
                  <th scope="col">Status</th>
                  <th scope="col">Model</th>
                  <th scope="col">File</th>
                  <th scope="col">Loss</th>
                  <th scope="col">Perplexity</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {list.map((e) => {
                  const m = (e.metrics ?? {}) as Record<string, number | null>;
                  return (
                    <tr key={e.id}>
                      <td>{e.id}</td>
                      <td>
                        <Status value={e.status} />
                      </td>
                      <td>{e.model}</td>
                      <td>
                        <button type="button" className="link" onClick={() => setCompareFile(e.file)} title="Compare every model on this file">
                          {e.file}
                        </button>
                      </td>
                      <td>{fmt(m.loss)}</td>
                      <td>{fmt(m.perplexity)}</td>
                      <td>{when(e.created_at)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </Scroll>
        )}
      </Listing>
      <section aria-labelledby="cmp-h">
        <h2 id="cmp-h">Compare on one file</h2>
        <label htmlFor="cmp-file">File</label>{' '}
        <select id="cmp-file" value={compareFile} onChange={(e) => setCompareFile(e.target.value)}>
          <option value="">Choose a file</option>
          {processed.map((x) => (
            <option key={x.id} value={x.id}>
              {x.filename} ({x.id})
            </option>
          ))}
        </select>
        <ErrorNote error={comparison.error} />
        {comparison.value &&
          (comparison.value.rows.length === 0 ? (
            <p className="muted">No finished evaluation on this file yet.</p>
          ) : (
            <Scroll label="Comparison">
              <table data-testid="comparison">
                <thead>
                  <tr>
                    <th scope="col">Model</th>
                    {comparison.value.columns.map((c) => (
                      <th key={c} scope="col">
                        {c}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {comparison.value.rows.map((r) => (
                    <tr key={r.model}>
                      <th scope="row">{r.model}</th>
                      {r.values.map((v, i) => {
                        const col = comparison.value?.columns[i] ?? '';
                        const best = r.best.includes(col);
                        return (
                          <td key={col} className={best ? 'best' : undefined}>
                            {fmt(v)}
                            {best ? <span className="sr-only"> (best)</span> : null}
                          </td>
                        );
                      })}
                    </tr>
                  ))}
                </tbody>
              </table>
            </Scroll>
          ))}
      </section>
    </section>
  );
}
