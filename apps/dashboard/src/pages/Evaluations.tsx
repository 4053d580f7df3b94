// Evaluations: start one (a model or checkpoint on a file), follow them, compare every model
// evaluated on one file side by side (ranked by the metric that matters for the file), and one
// evaluation's page with its metrics and sample outputs.
import { type Crucible, CrucibleApiError, type Evaluation } from '@crucible/sdk';
import { type FormEvent, useState } from 'react';
import { ErrorNote, Listing, Loading, Scroll, Status, when } from '../components/ui';
import { collect, useLoad } from '../hooks';
import { href } from '../route';
import { useAccess } from '../session';

function fmt(v: number | null | undefined): string {
  return v == null ? '–' : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

/** The metrics of an evaluation in the order that matters: the answers' first when it has them (supervised data). */
export function metricRows(m: Evaluation['metrics']): [string, string, number | null][] {
  if (!m) return [];
  const answers: [string, string, number | null][] = [
    ['exact_match', 'Exact match (answers)', m.exact_match],
    ['answer_loss', 'Answer loss', m.answer_loss],
    ['answer_token_accuracy', 'Answer token accuracy', m.answer_token_accuracy],
    ['answer_perplexity', 'Answer perplexity', m.answer_perplexity],
  ];
  const all: [string, string, number | null][] = [
    ['loss', 'Loss', m.loss],
    ['perplexity', 'Perplexity', m.perplexity],
    ['token_accuracy', 'Token accuracy', m.token_accuracy],
    ['tokens', 'Tokens predicted', m.tokens],
    ['records', 'Records', m.records],
  ];
  const hasAnswers = answers.some(([, , v]) => v !== null && v !== undefined);
  return hasAnswers ? [...answers.filter(([, , v]) => v !== null && v !== undefined), ...all] : all;
}

export function EvaluationPage({ crucible, id }: { crucible: Crucible; id: string }) {
  const ev = useLoad(() => crucible.retrieveEvaluation(id), [crucible, id], 2000);
  if (ev.error && !ev.value) return <ErrorNote error={ev.error} />;
  if (!ev.value) return <Loading />;
  const e = ev.value;
  return (
    <section>
      <p className="crumbs">
        <a href={href('evaluations')}>Evaluations</a> / {e.id}
      </p>
      <h1>
        {e.id} <Status value={e.status} />
      </h1>
      <dl className="facts">
        <dt>Model</dt>
        <dd>
          <a href={href('models', e.model)}>{e.model}</a>
        </dd>
        <dt>File</dt>
        <dd>
          <a href={href('datasets', e.file)}>{e.file}</a>
        </dd>
        <dt>Progress</dt>
        <dd>
          <progress max={1} value={e.progress} aria-label="evaluation progress" /> {Math.round(e.progress * 100)}%
        </dd>
        <dt>Created</dt>
        <dd>{when(e.created_at)}</dd>
        <dt>Finished</dt>
        <dd>{when(e.finished_at)}</dd>
      </dl>
      {e.error && (
        <p className="error" role="alert">
          {e.error.message} ({e.error.code})
        </p>
      )}
      {e.metrics && (
        <section aria-labelledby="metrics-h">
          <h2 id="metrics-h">Metrics</h2>
          <Scroll label="Metrics table">
            <table data-testid="metrics">
              <tbody>
                {metricRows(e.metrics).map(([key, label, v]) => (
                  <tr key={key} data-metric={key}>
                    <th scope="row">{label}</th>
                    <td>{fmt(v)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        </section>
      )}
      <section aria-labelledby="samples-h">
        <h2 id="samples-h">Sample outputs</h2>
        {e.samples.length === 0 ? (
          <p className="muted">{e.status === 'succeeded' ? 'No samples: the file has no prompts to answer (text data).' : 'Samples appear when it is done.'}</p>
        ) : (
          <Scroll label="Sample outputs table">
            <table data-testid="samples">
              <thead>
                <tr>
                  <th scope="col">Line</th>
                  <th scope="col">Prompt</th>
                  <th scope="col">Expected</th>
                  <th scope="col">Output</th>
                  <th scope="col">Match</th>
                </tr>
              </thead>
              <tbody>
                {e.samples.map((x) => (
                  <tr key={x.line}>
                    <td>{x.line}</td>
                    <td className="wrap">{x.prompt}</td>
                    <td className="wrap">{x.expected ?? '–'}</td>
                    <td className="wrap">{x.output}</td>
                    <td>{x.exact_match === null ? '–' : x.exact_match ? 'yes' : 'no'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
      </section>
    </section>
  );
}

export function EvaluationsPage({ crucible }: { crucible: Crucible }) {
  const { canWrite } = useAccess();
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
      {canWrite && (
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
      )}
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
                  <th scope="col">Answer loss</th>
                  <th scope="col">Loss</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {list.map((e) => {
                  const m = (e.metrics ?? {}) as Record<string, number | null>;
                  return (
                    <tr key={e.id}>
                      <td>
                        <a href={href('evaluations', e.id)}>{e.id}</a>
                      </td>
                      <td>
                        <Status value={e.status} />
                      </td>
                      <td>{e.model}</td>
                      <td>
                        <button type="button" className="link" onClick={() => setCompareFile(e.file)} title="Compare every model on this file">
                          {e.file}
                        </button>
                      </td>
                      <td>{fmt(m.answer_loss)}</td>
                      <td>{fmt(m.loss)}</td>
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
                      <th key={c} scope="col" aria-sort={c === comparison.value?.primary ? 'other' : undefined}>
                        {c}
                        {c === comparison.value?.primary ? ' (ranks the table)' : ''}
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
