// Models: the list, one model's details and download, and a playground that streams a completion.
import type { Crucible } from '@crucible/sdk';
import { type FormEvent, useRef, useState } from 'react';
import { ErrorNote, Listing, Loading, Scroll, when } from '../components/ui';
import { collect, useLoad } from '../hooks';
import { href } from '../route';

export function ModelsPage({ crucible }: { crucible: Crucible }) {
  const models = useLoad(() => collect(crucible.listModels()), [crucible]);
  return (
    <section>
      <h1>Models</h1>
      <Listing load={models} empty={<>No models.</>}>
        {(list) => (
          <Scroll label="Models">
            <table>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Source</th>
                  <th scope="col">Architecture</th>
                  <th scope="col">Base</th>
                  <th scope="col">Job</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {list.map((m) => (
                  <tr key={m.id}>
                    <td>
                      <a href={href('models', m.id)}>{m.id}</a>
                    </td>
                    <td>{m.source}</td>
                    <td>
                      {m.arch}
                      {m.peft ? ` · ${(m.peft as { type?: string }).type}` : ''}
                    </td>
                    <td>{m.base_model ?? '–'}</td>
                    <td>{m.fine_tuning_job ? <a href={href('jobs', m.fine_tuning_job)}>{m.fine_tuning_job}</a> : '–'}</td>
                    <td>{when(m.created)}</td>
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

export function ModelPage({ crucible, id }: { crucible: Crucible; id: string }) {
  const model = useLoad(() => crucible.retrieveModel(id), [crucible, id]);
  const [downloading, setDownloading] = useState(false);
  const [downloadError, setDownloadError] = useState<unknown>();
  if (model.error && !model.value) return <ErrorNote error={model.error} />;
  if (!model.value) return <Loading />;
  const m = model.value;

  async function download(variant: 'full' | 'adapter') {
    setDownloading(true);
    setDownloadError(null);
    try {
      // the key goes in a header, so the archive is fetched and handed to the browser as a blob
      const res = await crucible.downloadModel(m.id, { variant });
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = /filename="?([^";]+)"?/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${m.id.replace(/[^\w.-]+/g, '_')}.tar.gz`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setDownloadError(err);
    } finally {
      setDownloading(false);
    }
  }

  return (
    <section>
      <p className="crumbs">
        <a href={href('models')}>Models</a> / {m.id}
      </p>
      <div className="page-head">
        <h1>{m.id}</h1>
        {m.source !== 'preset' && (
          <div className="actions">
            <button type="button" onClick={() => download('full')} disabled={downloading}>
              {downloading ? 'Downloading…' : 'Download'}
            </button>
            {m.peft && (
              <button type="button" onClick={() => download('adapter')} disabled={downloading}>
                Download adapter
              </button>
            )}
          </div>
        )}
      </div>
      <ErrorNote error={downloadError} />
      <dl className="facts">
        <dt>Source</dt>
        <dd>{m.source}</dd>
        <dt>Architecture</dt>
        <dd>{m.arch}</dd>
        <dt>Base model</dt>
        <dd>{m.base_model ?? '–'}</dd>
        <dt>Trained by</dt>
        <dd>{m.fine_tuning_job ? <a href={href('jobs', m.fine_tuning_job)}>{m.fine_tuning_job}</a> : '–'}</dd>
        <dt>PEFT</dt>
        <dd>{m.peft ? <code>{JSON.stringify(m.peft)}</code> : 'none (all weights)'}</dd>
        <dt>Created</dt>
        <dd>{when(m.created)}</dd>
      </dl>
      {m.source === 'preset' ? (
        <p className="muted">A preset is a shape with untrained weights: pretrain it with a job, then try the trained model here.</p>
      ) : m.arch === 'bert' ? (
        <p className="muted">A masked LM: try it through POST /v1/fill_mask.</p>
      ) : (
        <Playground crucible={crucible} model={m.id} />
      )}
    </section>
  );
}

function Playground({ crucible, model }: { crucible: Crucible; model: string }) {
  const [output, setOutput] = useState('');
  const [error, setError] = useState<unknown>();
  const [running, setRunning] = useState(false);
  const stop = useRef<AbortController | null>(null);

  async function run(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const num = (k: string) => Number(f.get(k));
    setOutput('');
    setError(null);
    setRunning(true);
    const ctl = new AbortController();
    stop.current = ctl;
    try {
      const seed = String(f.get('seed') ?? '').trim();
      for await (const chunk of crucible.streamCompletion(
        {
          model,
          prompt: String(f.get('prompt') ?? ''),
          max_tokens: num('max_tokens'),
          temperature: num('temperature'),
          top_p: num('top_p'),
          ...(seed ? { seed: Number(seed) } : {}),
        },
        { signal: ctl.signal },
      )) {
        const text = chunk.choices[0]?.text ?? '';
        if (text) setOutput((o) => o + text);
      }
    } catch (err) {
      if (!ctl.signal.aborted) setError(err);
    } finally {
      setRunning(false);
    }
  }

  return (
    <section aria-labelledby="playground-h" className="playground">
      <h2 id="playground-h">Playground</h2>
      <form onSubmit={run}>
        <label htmlFor="prompt">Prompt</label>
        <textarea id="prompt" name="prompt" rows={4} defaultValue="ROMEO:" />
        <div className="grid">
          <div className="field">
            <label htmlFor="max_tokens">Max tokens</label>
            <input id="max_tokens" name="max_tokens" type="number" min={1} max={2048} defaultValue={100} />
          </div>
          <div className="field">
            <label htmlFor="temperature">Temperature</label>
            <input id="temperature" name="temperature" type="number" min={0} max={2} step={0.05} defaultValue={0.8} />
          </div>
          <div className="field">
            <label htmlFor="top_p">Top p</label>
            <input id="top_p" name="top_p" type="number" min={0} max={1} step={0.05} defaultValue={1} />
          </div>
          <div className="field">
            <label htmlFor="seed">Seed (optional)</label>
            <input id="seed" name="seed" type="number" min={0} />
          </div>
        </div>
        <div className="actions">
          <button type="submit" disabled={running}>
            {running ? 'Generating…' : 'Generate'}
          </button>
          {running && (
            <button type="button" onClick={() => stop.current?.abort()}>
              Stop
            </button>
          )}
        </div>
      </form>
      <ErrorNote error={error} />
      <output className="completion" data-testid="completion" aria-live="polite">
        {output}
      </output>
    </section>
  );
}
