// Models: the list, one model's (or checkpoint's) details, download and delete, and a playground
// that streams a completion or a chat answer (the model's own chat template, a system prompt).
import type { Crucible } from '@crucible/sdk';
import { type FormEvent, useRef, useState } from 'react';
import { ConfirmDelete, ErrorNote, Listing, Loading, Scroll, when } from '../components/ui';
import { downloadModel } from '../download';
import { collect, useLoad } from '../hooks';
import { href, hrefWith } from '../route';
import { useAccess } from '../session';

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

export function ModelPage({ crucible, id, query }: { crucible: Crucible; id: string; query?: URLSearchParams }) {
  const model = useLoad(() => crucible.retrieveModel(id), [crucible, id]);
  const { canWrite } = useAccess();
  const [downloading, setDownloading] = useState(false);
  const [downloadError, setDownloadError] = useState<unknown>();
  const [confirming, setConfirming] = useState(false);
  if (model.error && !model.value) return <ErrorNote error={model.error} />;
  if (!model.value) return <Loading />;
  const m = model.value;
  const checkpoint = (m.source as string) === 'checkpoint';

  async function download(variant: 'full' | 'adapter') {
    setDownloading(true);
    setDownloadError(null);
    try {
      await downloadModel(crucible, m.id, variant);
    } catch (err) {
      setDownloadError(err);
    } finally {
      setDownloading(false);
    }
  }

  async function remove() {
    setDownloadError(null);
    try {
      await crucible.deleteModel(m.id);
      window.location.hash = href('models');
    } catch (err) {
      setDownloadError(err);
      setConfirming(false);
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
            {!(checkpoint && m.peft) && (
              <button type="button" onClick={() => download('full')} disabled={downloading}>
                {downloading ? 'Downloading…' : 'Download'}
              </button>
            )}
            {m.peft && (
              <button type="button" onClick={() => download('adapter')} disabled={downloading}>
                Download adapter
              </button>
            )}
            {canWrite && m.arch !== 'bert' && (
              <a className="button" href={hrefWith({ model: m.id }, 'jobs', 'new')}>
                Fine-tune from here
              </a>
            )}
            {canWrite && !checkpoint && (
              <button type="button" className="danger" onClick={() => setConfirming(true)} disabled={confirming}>
                Delete
              </button>
            )}
          </div>
        )}
      </div>
      {confirming && (
        <ConfirmDelete
          question={`Delete ${m.id}? Its files are removed; jobs and evaluations that used it keep their records. This cannot be undone.`}
          confirm="Delete the model"
          onConfirm={remove}
          onKeep={() => setConfirming(false)}
        />
      )}
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
      ) : canWrite ? (
        <Playground crucible={crucible} model={m.id} initialMode={query?.get('mode') === 'chat' ? 'chat' : 'completion'} />
      ) : (
        <p className="muted">This API key is read-only: sampling needs the write scope.</p>
      )}
    </section>
  );
}

type Turn = { role: 'user' | 'assistant'; content: string };

function Playground({ crucible, model, initialMode }: { crucible: Crucible; model: string; initialMode: 'chat' | 'completion' }) {
  const [mode, setMode] = useState(initialMode);
  const [output, setOutput] = useState('');
  const [turns, setTurns] = useState<Turn[]>([]);
  const [error, setError] = useState<unknown>();
  const [running, setRunning] = useState(false);
  const stop = useRef<AbortController | null>(null);

  async function run(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const num = (k: string) => Number(f.get(k));
    const seed = String(f.get('seed') ?? '').trim();
    const params = {
      model,
      max_tokens: num('max_tokens'),
      temperature: num('temperature'),
      top_p: num('top_p'),
      ...(seed ? { seed: Number(seed) } : {}),
    };
    setError(null);
    setRunning(true);
    const ctl = new AbortController();
    stop.current = ctl;
    try {
      if (mode === 'completion') {
        setOutput('');
        for await (const chunk of crucible.streamCompletion({ ...params, prompt: String(f.get('prompt') ?? '') }, { signal: ctl.signal })) {
          const text = chunk.choices[0]?.text ?? '';
          if (text) setOutput((o) => o + text);
        }
      } else {
        const message = String(f.get('message') ?? '').trim();
        if (!message) return setError(new Error('Write a message first.'));
        const system = String(f.get('system') ?? '').trim();
        const history: Turn[] = [...turns, { role: 'user', content: message }];
        setTurns([...history, { role: 'assistant', content: '' }]);
        (form.elements.namedItem('message') as HTMLTextAreaElement).value = '';
        const messages = [...(system ? [{ role: 'system' as const, content: system }] : []), ...history];
        let answer = '';
        for await (const chunk of crucible.streamChatCompletion({ ...params, messages }, { signal: ctl.signal })) {
          answer += chunk.choices[0]?.delta?.content ?? '';
          setTurns([...history, { role: 'assistant', content: answer }]);
        }
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
      <fieldset className="modes">
        <legend>Mode</legend>
        <label>
          <input type="radio" name="mode" checked={mode === 'chat'} onChange={() => setMode('chat')} /> Chat (the model’s template)
        </label>
        <label>
          <input type="radio" name="mode" checked={mode === 'completion'} onChange={() => setMode('completion')} /> Completion
        </label>
      </fieldset>
      <form onSubmit={run}>
        {mode === 'completion' ? (
          <>
            <label htmlFor="prompt">Prompt</label>
            <textarea id="prompt" name="prompt" rows={4} defaultValue="ROMEO:" />
          </>
        ) : (
          <>
            <label htmlFor="system">System prompt (optional)</label>
            <textarea id="system" name="system" rows={2} placeholder="You are a helpful assistant." />
            <ol className="chat-log" aria-label="Conversation" data-testid="chat-log">
              {turns.map((t, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: turns only grow
                <li key={i} className={`turn ${t.role}`}>
                  <strong>{t.role === 'user' ? 'You' : 'Model'}:</strong> {t.content}
                </li>
              ))}
            </ol>
            <label htmlFor="message">Message</label>
            <textarea id="message" name="message" rows={3} />
          </>
        )}
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
            {running ? 'Generating…' : mode === 'chat' ? 'Send' : 'Generate'}
          </button>
          {running && (
            <button type="button" onClick={() => stop.current?.abort()}>
              Stop
            </button>
          )}
          {mode === 'chat' && turns.length > 0 && !running && (
            <button type="button" onClick={() => setTurns([])}>
              New conversation
            </button>
          )}
        </div>
      </form>
      <ErrorNote error={error} />
      {mode === 'completion' && (
        <output className="completion" data-testid="completion" aria-live="polite">
          {output}
        </output>
      )}
    </section>
  );
}
