// Datasets: upload with a progress bar, the list of files, and each file's page: its validation
// report and statistics, a check against a base model (token counts, characters its tokenizer
// lacks, a preview marking the tokens that carry loss), preparation (cleaning, dedup, PII) and
// delete.
import type { Crucible, FilePreview, FilePurpose, FileReport, FileStats } from '@crucible/sdk';
import { type FormEvent, useRef, useState } from 'react';
import { bytes, ConfirmDelete, count, ErrorNote, Listing, Loading, Scroll, Status, when } from '../components/ui';
import { collect, useLoad } from '../hooks';
import { href, hrefWith } from '../route';
import { useAccess } from '../session';

export function DatasetsPage({ crucible }: { crucible: Crucible }) {
  const files = useLoad(() => collect(crucible.listFiles()), [crucible], 4000);
  const { canWrite } = useAccess();
  const [progress, setProgress] = useState<{ loaded: number; total: number | null } | null>(null);
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  async function upload(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const file = input.current?.files?.[0];
    setError(null);
    setDone(null);
    if (!file) return setError(new Error('Choose a file to upload.'));
    setProgress({ loaded: 0, total: file.size });
    try {
      const f = await crucible.uploadFile({ name: file.name, data: file }, { purpose: String(form.get('purpose')) as FilePurpose, onProgress: setProgress });
      setDone(f.id);
      files.reload();
    } catch (err) {
      setError(err);
    } finally {
      setProgress(null);
    }
  }

  return (
    <section>
      <h1>Datasets</h1>
      {canWrite && (
        <form className="upload" onSubmit={upload}>
          <label htmlFor="upload-file">Dataset file (.jsonl or text)</label>
          <input id="upload-file" ref={input} type="file" name="file" />
          <label htmlFor="upload-purpose">Purpose</label>
          <select id="upload-purpose" name="purpose" defaultValue="fine-tune">
            <option value="fine-tune">fine-tune (any format)</option>
            <option value="pretrain">pretrain (text)</option>
            <option value="supervised">supervised (prompt/completion, chat)</option>
            <option value="evals">evals</option>
          </select>
          <button type="submit" disabled={progress !== null}>
            Upload
          </button>
          {progress && (
            <span className="progress-cell" aria-live="polite">
              <progress data-testid="upload-progress" max={progress.total ?? undefined} value={progress.loaded} aria-label="upload progress" />{' '}
              {bytes(progress.loaded)}
              {progress.total ? ` of ${bytes(progress.total)}` : ''}
            </span>
          )}
        </form>
      )}
      <ErrorNote error={error} />
      {done && (
        <p className="ok" role="status">
          Uploaded <a href={href('datasets', done)}>{done}</a>.
        </p>
      )}
      <Listing load={files} empty={<>No datasets yet: upload a .jsonl or text file above.</>}>
        {(list) => (
          <Scroll label="Datasets">
            <table>
              <thead>
                <tr>
                  <th scope="col">File</th>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Purpose</th>
                  <th scope="col">Format</th>
                  <th scope="col">Records</th>
                  <th scope="col">Size</th>
                  <th scope="col">Uploaded</th>
                </tr>
              </thead>
              <tbody>
                {list.map((f) => (
                  <tr key={f.id} data-file={f.id}>
                    <td>
                      <a href={href('datasets', f.id)}>{f.id}</a>
                    </td>
                    <td>{f.filename}</td>
                    <td>
                      <Status value={f.status} />
                      {f.problem_count ? <span className="muted"> ({count(f.problem_count, 'problem')})</span> : null}
                    </td>
                    <td>{f.purpose}</td>
                    <td>{f.format ?? '–'}</td>
                    <td>{f.lines}</td>
                    <td>{bytes(f.bytes)}</td>
                    <td>{when(f.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
      </Listing>
    </section>
  );
}

function Histogram({ h }: { h: FileStats['length_histogram'] }) {
  const max = Math.max(1, ...h.buckets.map((b) => b.count));
  return (
    <table className="histogram">
      <caption>Record length ({h.unit})</caption>
      <thead>
        <tr>
          <th scope="col">≤</th>
          <th scope="col">Records</th>
        </tr>
      </thead>
      <tbody>
        {h.buckets.map((b) => (
          <tr key={b.le}>
            <td>{b.le}</td>
            <td>
              <span className="bar" style={{ width: `${Math.round((160 * b.count) / max)}px` }} /> {b.count}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A file against a base model: its tokens, the characters the model's tokenizer lacks, and the first records as the trainer tokenizes them. */
function CheckAgainstModel({ crucible, id }: { crucible: Crucible; id: string }) {
  const models = useLoad(() => collect(crucible.listModels()), [crucible]);
  const [model, setModel] = useState('');
  const [result, setResult] = useState<{ stats?: FileStats; preview?: FilePreview; error?: unknown; busy?: boolean }>({});
  const choices = (models.value ?? []).filter((m) => m.source !== 'preset');

  async function check(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (!model) return;
    setResult({ busy: true });
    try {
      const [stats, preview] = await Promise.all([crucible.fileStats(id, model), crucible.previewFile(id, model, 3)]);
      setResult({ stats, preview });
    } catch (error) {
      setResult({ error });
    }
  }
  const t = result.stats?.tokens;
  const unknown = t?.unknown_characters ?? [];
  return (
    <section aria-labelledby="check-h">
      <h2 id="check-h">Check against a base model</h2>
      <form className="form inline" onSubmit={check}>
        <div className="field">
          <label htmlFor="check-model">Base model</label>
          <select id="check-model" value={model} onChange={(e) => setModel(e.target.value)}>
            <option value="">{choices.length ? 'Choose a trained or imported model' : 'No trained or imported model yet'}</option>
            {choices.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" disabled={!model || result.busy}>
          {result.busy ? 'Checking…' : 'Check'}
        </button>
      </form>
      <ErrorNote error={result.error} />
      {t && (
        <div data-testid="check-result">
          {unknown.length > 0 || t.lacks_chat_tokens ? (
            <p className="error" role="alert" data-testid="unknown-characters">
              {model}’s tokenizer lacks{' '}
              {unknown.length > 0
                ? `${count(unknown.length, 'character')}: ${unknown.map((u) => `${JSON.stringify(u.char)} (line ${u.line})`).join(', ')}`
                : ''}
              {t.lacks_chat_tokens ? `${unknown.length ? '; and ' : ''}the chat template’s tokens` : ''}. A job from it would refuse this file: pick a model
              with a byte-level BPE tokenizer.
            </p>
          ) : (
            <p className="ok" role="status">
              Every character is known to {model}’s tokenizer.
            </p>
          )}
          <p>
            {t.total.toLocaleString('en')} tokens, {t.trained.toLocaleString('en')} of them trained on; {t.mean_per_record.toFixed(1)} per record on average, at
            most {t.max_per_record.toLocaleString('en')}.
          </p>
          <Histogram h={t.length_histogram} />
          {result.preview && result.preview.records.length > 0 && (
            <>
              <h3>How the trainer reads the first records</h3>
              <p className="hint">Highlighted tokens carry loss (the answers of supervised data).</p>
              {result.preview.records.map((r) => (
                <div key={r.line}>
                  <p className="muted">Line {r.line}</p>
                  <p className="tokens" data-testid="preview-tokens">
                    {r.tokens.map((tok, i) => (
                      // biome-ignore lint/suspicious/noArrayIndexKey: tokens in order
                      <span key={i} className={tok.loss ? 'loss' : undefined} title={`id ${tok.id}${tok.loss ? ', trained on' : ''}`}>
                        {tok.text}
                      </span>
                    ))}
                  </p>
                </div>
              ))}
            </>
          )}
          {unknown.length === 0 && !t.lacks_chat_tokens && (
            <p>
              <a className="button" href={hrefWith({ file: id, model }, 'jobs', 'new')}>
                Fine-tune {model} on this file
              </a>
            </p>
          )}
        </div>
      )}
    </section>
  );
}

const RULES: [string, string][] = [
  ['normalize_unicode', 'Unicode NFC'],
  ['remove_control_characters', 'Remove control characters'],
  ['normalize_whitespace', 'Normalize whitespace'],
  ['deduplicate', 'Remove exact duplicates'],
  ['near_duplicates', 'Remove near duplicates'],
  ['scrub_pii', 'Scrub PII (emails, phones, …)'],
];

/** Preparation: the pipeline's rules as checkboxes; the prepared file is a new file, with its report. */
function Prepare({ crucible, id }: { crucible: Crucible; id: string }) {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  async function prepare(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const rules = Object.fromEntries(RULES.map(([k]) => [k, f.get(k) === 'on']));
    setBusy(true);
    setError(null);
    try {
      const made = await crucible.prepareFile(id, { rules } as never);
      window.location.hash = href('datasets', made.id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <section aria-labelledby="prepare-h">
      <h2 id="prepare-h">Prepare</h2>
      <form onSubmit={prepare} className="form">
        <fieldset>
          <legend>Rules (the result is a new file with a report)</legend>
          {RULES.map(([k, label]) => (
            <label key={k}>
              <input type="checkbox" name={k} defaultChecked={k !== 'near_duplicates' && k !== 'scrub_pii'} /> {label}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={busy}>
          {busy ? 'Preparing…' : 'Prepare'}
        </button>
      </form>
      <ErrorNote error={error} />
    </section>
  );
}

export function DatasetPage({ crucible, id }: { crucible: Crucible; id: string }) {
  const file = useLoad(() => crucible.retrieveFile(id), [crucible, id], 3000);
  const { canWrite } = useAccess();
  const [confirming, setConfirming] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>();
  const status = file.value?.status;
  const report = useLoad<FileReport | null>(() => (status && status !== 'pending' ? crucible.fileReport(id) : Promise.resolve(null)), [crucible, id, status]);
  const stats = useLoad<FileStats | null>(() => (status === 'processed' ? crucible.fileStats(id) : Promise.resolve(null)), [crucible, id, status]);
  if (file.error && !file.value) return <ErrorNote error={file.error} />;
  if (!file.value) return <Loading />;
  const f = file.value;
  const v = report.value?.validation;

  async function remove() {
    try {
      await crucible.deleteFile(f.id);
      window.location.hash = href('datasets');
    } catch (err) {
      setDeleteError(err);
      setConfirming(false);
    }
  }
  return (
    <section>
      <p className="crumbs">
        <a href={href('datasets')}>Datasets</a> / {f.id}
      </p>
      <div className="page-head">
        <h1>
          {f.filename} <Status value={f.status} />
        </h1>
        {canWrite && (
          <div className="actions">
            <button type="button" className="danger" onClick={() => setConfirming(true)} disabled={confirming}>
              Delete
            </button>
          </div>
        )}
      </div>
      {confirming && (
        <ConfirmDelete
          question={`Delete ${f.filename}? Its content is removed; a file a job is using cannot be deleted. This cannot be undone.`}
          confirm="Delete the file"
          onConfirm={remove}
          onKeep={() => setConfirming(false)}
        />
      )}
      <ErrorNote error={deleteError} />
      <dl className="facts">
        <dt>File</dt>
        <dd>{f.id}</dd>
        <dt>Purpose</dt>
        <dd>{f.purpose}</dd>
        <dt>Format</dt>
        <dd>{f.format ?? '–'}</dd>
        <dt>Size</dt>
        <dd>{bytes(f.bytes)}</dd>
        <dt>Records</dt>
        <dd>{f.lines}</dd>
        <dt>sha256</dt>
        <dd>
          <code>{f.sha256}</code>
        </dd>
      </dl>
      {f.status === 'pending' && <p className="muted">Validating… this page updates when it is done.</p>}
      {f.status_details && <p className={f.status === 'error' ? 'error' : 'muted'}>{f.status_details}</p>}
      <ErrorNote error={report.error ?? stats.error} />
      {v && (
        <section aria-labelledby="report-h">
          <h2 id="report-h">Validation report</h2>
          <p>
            {count(v.records, 'record')}, {count(v.lines, 'line')}, {count(v.characters, 'character')}; {count(v.problem_count, 'problem')}.
          </p>
          {v.problems.length > 0 && (
            <Scroll label="Validation problems">
              <table data-testid="problems">
                <thead>
                  <tr>
                    <th scope="col">Line</th>
                    <th scope="col">Field</th>
                    <th scope="col">Code</th>
                    <th scope="col">Message</th>
                  </tr>
                </thead>
                <tbody>
                  {v.problems.map((p) => (
                    <tr key={`${p.line}-${p.field}-${p.code}-${p.message}`}>
                      <td>{p.line}</td>
                      <td>{p.field ?? '–'}</td>
                      <td>
                        <code>{p.code}</code>
                      </td>
                      <td>{p.message}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Scroll>
          )}
        </section>
      )}
      {stats.value && (
        <section aria-labelledby="stats-h">
          <h2 id="stats-h">Statistics</h2>
          <p>
            {count(stats.value.records, 'record')}, {count(stats.value.characters, 'character')}, {bytes(stats.value.bytes)}.
          </p>
          <Histogram h={stats.value.length_histogram} />
        </section>
      )}
      {f.status === 'processed' && <CheckAgainstModel crucible={crucible} id={f.id} />}
      {f.status === 'processed' && canWrite && !report.value?.preparation && <Prepare crucible={crucible} id={f.id} />}
      {report.value?.preparation && (
        <section>
          <h2>Preparation</h2>
          <p>
            Prepared from <a href={href('datasets', report.value.preparation.source_file)}>{report.value.preparation.source_file}</a>.
          </p>
          <Scroll label="Preparation report" as="pre" className="json">
            {JSON.stringify(report.value.preparation.report, null, 2)}
          </Scroll>
        </section>
      )}
    </section>
  );
}
