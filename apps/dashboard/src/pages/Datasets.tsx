// Datasets: upload with a progress bar, the list of files, and each file's validation report and statistics.
import type { Crucible, FilePurpose, FileReport, FileStats } from '@crucible/sdk';
import { type FormEvent, useRef, useState } from 'react';
import { bytes, count, ErrorNote, Listing, Loading, Scroll, Status, when } from '../components/ui';
import { collect, useLoad } from '../hooks';
import { href } from '../route';

export function DatasetsPage({ crucible }: { crucible: Crucible }) {
  const files = useLoad(() => collect(crucible.listFiles()), [crucible], 4000);
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

export function DatasetPage({ crucible, id }: { crucible: Crucible; id: string }) {
  const file = useLoad(() => crucible.retrieveFile(id), [crucible, id], 3000);
  const status = file.value?.status;
  const report = useLoad<FileReport | null>(() => (status && status !== 'pending' ? crucible.fileReport(id) : Promise.resolve(null)), [crucible, id, status]);
  const stats = useLoad<FileStats | null>(() => (status === 'processed' ? crucible.fileStats(id) : Promise.resolve(null)), [crucible, id, status]);
  if (file.error && !file.value) return <ErrorNote error={file.error} />;
  if (!file.value) return <Loading />;
  const f = file.value;
  const v = report.value?.validation;
  return (
    <section>
      <p className="crumbs">
        <a href={href('datasets')}>Datasets</a> / {f.id}
      </p>
      <h1>
        {f.filename} <Status value={f.status} />
      </h1>
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
