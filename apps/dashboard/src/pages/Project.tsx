// The project: usage against its limits, its API keys (create with scopes, revoke, last used) and
// its webhook endpoints (create, delete, send a test, the delivery log). Keys and webhooks need an
// admin key; others see the usage only.
import type { ApiKey, CreateWebhookRequest, Crucible, WebhookEndpoint, WebhookTestResult } from '@crucible/sdk';
import { type FormEvent, useState } from 'react';
import { bytes, ErrorNote, Listing, Loading, Scroll, Status, when } from '../components/ui';
import { collect, useLoad } from '../hooks';
import { useAccess } from '../session';

type EventType = CreateWebhookRequest['event_types'][number];
const EVENT_TYPES: EventType[] = [
  'fine_tuning.job.succeeded',
  'fine_tuning.job.failed',
  'fine_tuning.job.cancelled',
  'evaluation.succeeded',
  'evaluation.failed',
  'evaluation.cancelled',
];

const LIMIT_LABELS: Record<string, string> = {
  rate_limit_rpm: 'Requests per minute',
  max_concurrent_jobs: 'Jobs running at once',
  max_queued_jobs: 'Jobs waiting',
  max_storage_bytes: 'Storage',
  max_job_tokens: 'Tokens per job',
  max_prompt_chars: 'Prompt characters',
  max_completion_tokens: 'Completion tokens',
  max_concurrent_inference: 'Inference requests at once',
};

export function ProjectPage({ crucible }: { crucible: Crucible }) {
  const { caller, isAdmin } = useAccess();
  const project = useLoad(() => crucible.me(), [crucible], 5000);
  const p = project.value?.project ?? caller?.project;
  if (project.error && !p) return <ErrorNote error={project.error} />;
  if (!p) return <Loading />;
  const usage: Record<string, string> = {
    max_storage_bytes: `${bytes(p.usage.storage_bytes)} of ${bytes(p.limits.max_storage_bytes)}`,
    max_concurrent_jobs: `${p.usage.running_jobs} of ${p.limits.max_concurrent_jobs}`,
    max_queued_jobs: `${p.usage.queued_jobs} of ${p.limits.max_queued_jobs}`,
  };
  return (
    <section>
      <h1>Project {p.name}</h1>
      <dl className="facts">
        <dt>Project</dt>
        <dd>{p.id}</dd>
        <dt>Created</dt>
        <dd>{when(p.created_at)}</dd>
        <dt>This key</dt>
        <dd>{caller ? `${caller.api_key.name} (${caller.api_key.prefix}…): ${caller.api_key.scopes.join(', ')}` : '–'}</dd>
      </dl>
      <section aria-labelledby="usage-h">
        <h2 id="usage-h">Usage and limits</h2>
        <Scroll label="Limits table">
          <table data-testid="limits">
            <thead>
              <tr>
                <th scope="col">Limit</th>
                <th scope="col">In use / allowed</th>
                <th scope="col">Storage used</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(p.limits).map(([k, v]) => (
                <tr key={k}>
                  <th scope="row">{LIMIT_LABELS[k] ?? k}</th>
                  <td>{usage[k] ?? (k === 'max_storage_bytes' ? bytes(v) : v.toLocaleString('en'))}</td>
                  <td>{k === 'max_storage_bytes' ? <progress max={v || 1} value={p.usage.storage_bytes} aria-label="storage used" /> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      </section>
      {isAdmin ? (
        <>
          <Keys crucible={crucible} projectId={p.id} currentKey={caller?.api_key.id} />
          <Webhooks crucible={crucible} />
        </>
      ) : (
        <p className="muted">API keys and webhooks are managed with an admin key.</p>
      )}
    </section>
  );
}

function Keys({ crucible, projectId, currentKey }: { crucible: Crucible; projectId: string; currentKey?: string }) {
  const keys = useLoad(() => collect(crucible.listApiKeys(projectId)), [crucible, projectId]);
  const [error, setError] = useState<unknown>();
  const [made, setMade] = useState<ApiKey | null>(null);

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const scopes = (['read', 'write', 'admin'] as const).filter((s) => f.get(`scope-${s}`) === 'on');
    setError(null);
    setMade(null);
    try {
      setMade(await crucible.createApiKey(projectId, { name: String(f.get('name') ?? '').trim(), scopes: scopes.length ? scopes : ['read'] }));
      form.reset();
      keys.reload();
    } catch (err) {
      setError(err);
    }
  }

  async function revoke(k: ApiKey) {
    if (!window.confirm(`Revoke ${k.name} (${k.prefix}…)? Requests with it are refused from now on.`)) return;
    setError(null);
    try {
      await crucible.revokeApiKey(projectId, k.id);
      keys.reload();
    } catch (err) {
      setError(err);
    }
  }

  return (
    <section aria-labelledby="keys-h">
      <h2 id="keys-h">API keys</h2>
      <form className="form inline" onSubmit={create}>
        <div className="field">
          <label htmlFor="key-name">Name</label>
          <input id="key-name" name="name" required maxLength={128} placeholder="ci reader" />
        </div>
        <fieldset className="scopes">
          <legend>Scopes</legend>
          {(['read', 'write', 'admin'] as const).map((s) => (
            <label key={s}>
              <input type="checkbox" name={`scope-${s}`} defaultChecked={s !== 'admin'} /> {s}
            </label>
          ))}
        </fieldset>
        <button type="submit">Create key</button>
      </form>
      <ErrorNote error={error} />
      {made?.secret && (
        <div className="ok" role="status" data-testid="new-key">
          <p>
            Key <strong>{made.name}</strong> created. Copy it now: it is not shown again.
          </p>
          <p className="secret" data-testid="new-key-secret">
            {made.secret}
          </p>
        </div>
      )}
      <Listing load={keys} empty={<>No keys.</>}>
        {(list) => (
          <Scroll label="API keys table">
            <table data-testid="keys">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Key</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Status</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {list.map((k) => (
                  <tr key={k.id} data-key={k.name}>
                    <td>{k.name}</td>
                    <td>
                      <code>{k.prefix}…</code>
                    </td>
                    <td>{k.scopes.join(', ')}</td>
                    <td>{when(k.created_at)}</td>
                    <td>{k.last_used_at ? when(k.last_used_at) : 'never'}</td>
                    <td>{k.revoked_at ? <Status value="revoked" /> : k.id === currentKey ? 'this key' : 'active'}</td>
                    <td>
                      {!k.revoked_at && k.id !== currentKey && (
                        <button type="button" className="link" onClick={() => revoke(k)} aria-label={`Revoke ${k.name}`}>
                          Revoke
                        </button>
                      )}
                    </td>
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

function Webhooks({ crucible }: { crucible: Crucible }) {
  const endpoints = useLoad(() => collect(crucible.listWebhookEndpoints()), [crucible]);
  const [error, setError] = useState<unknown>();
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const types = EVENT_TYPES.filter((t) => f.get(`ev-${t}`) === 'on');
    setError(null);
    setSecret(null);
    try {
      const made = await crucible.createWebhookEndpoint({
        name: String(f.get('name') ?? '').trim(),
        url: String(f.get('url') ?? '').trim(),
        event_types: types.length ? types : EVENT_TYPES,
      });
      setSecret(made.signing_secret ?? null);
      form.reset();
      endpoints.reload();
    } catch (err) {
      setError(err);
    }
  }

  async function remove(w: WebhookEndpoint) {
    if (!window.confirm(`Delete the webhook endpoint ${w.name}? Its deliveries stop.`)) return;
    try {
      await crucible.deleteWebhookEndpoint(w.id);
      endpoints.reload();
    } catch (err) {
      setError(err);
    }
  }

  return (
    <section aria-labelledby="webhooks-h">
      <h2 id="webhooks-h">Webhook endpoints</h2>
      <form className="form inline" onSubmit={create}>
        <div className="field">
          <label htmlFor="wh-name">Name</label>
          <input id="wh-name" name="name" required maxLength={128} placeholder="deploys" />
        </div>
        <div className="field">
          <label htmlFor="wh-url">URL</label>
          <input id="wh-url" name="url" type="url" required placeholder="https://example.com/hooks/crucible" />
        </div>
        <fieldset className="scopes">
          <legend>Events</legend>
          {EVENT_TYPES.map((t) => (
            <label key={t}>
              <input type="checkbox" name={`ev-${t}`} defaultChecked={t.endsWith('succeeded') || t.endsWith('failed')} /> {t}
            </label>
          ))}
        </fieldset>
        <button type="submit">Add endpoint</button>
      </form>
      <ErrorNote error={error} />
      {secret && (
        <div className="ok" role="status">
          <p>Endpoint added. Its signing secret (shown once) verifies deliveries:</p>
          <p className="secret">{secret}</p>
        </div>
      )}
      <Listing load={endpoints} empty={<>No webhook endpoints: add one to hear when jobs and evaluations end.</>}>
        {(list) => (
          <Scroll label="Webhook endpoints table">
            <table data-testid="webhooks">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">URL</th>
                  <th scope="col">Events</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {list.map((w) => (
                  <tr key={w.id} data-webhook={w.name}>
                    <td>{w.name}</td>
                    <td>
                      <code>{w.url}</code>
                    </td>
                    <td>{w.event_types.length}</td>
                    <td>
                      <div className="actions">
                        <button type="button" className="link" onClick={() => setOpen(open === w.id ? null : w.id)} aria-expanded={open === w.id}>
                          Deliveries and test
                        </button>
                        <button type="button" className="link" onClick={() => remove(w)} aria-label={`Delete ${w.name}`}>
                          Delete
                        </button>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
      </Listing>
      {open && endpoints.value?.some((w) => w.id === open) && (
        <Deliveries crucible={crucible} endpoint={endpoints.value.find((w) => w.id === open) as WebhookEndpoint} />
      )}
    </section>
  );
}

function Deliveries({ crucible, endpoint }: { crucible: Crucible; endpoint: WebhookEndpoint }) {
  const deliveries = useLoad(() => collect(crucible.listWebhookDeliveries(endpoint.id), 100), [crucible, endpoint.id], 5000);
  const [test, setTest] = useState<{ result?: WebhookTestResult; error?: unknown; busy?: boolean }>({});
  async function send() {
    setTest({ busy: true });
    try {
      setTest({ result: await crucible.testWebhookEndpoint(endpoint.id, endpoint.event_types[0] ?? 'fine_tuning.job.succeeded') });
    } catch (error) {
      setTest({ error });
    }
  }
  return (
    <section aria-labelledby="deliveries-h">
      <h3 id="deliveries-h">{endpoint.name}: deliveries</h3>
      <div className="actions">
        <button type="button" onClick={send} disabled={test.busy}>
          {test.busy ? 'Sending…' : 'Send test'}
        </button>
      </div>
      {test.result && (
        <p className={test.result.delivered ? 'ok' : 'error'} role="status" data-testid="webhook-test">
          Test {test.result.event_type}: the receiver answered {test.result.status_code}
          {test.result.delivered ? ' (delivered).' : ' (not 2xx: a real event would be retried).'}
        </p>
      )}
      <ErrorNote error={test.error} />
      <Listing load={deliveries} empty={<>No deliveries yet (tests are not logged; events are, when jobs and evaluations end).</>}>
        {(list) => (
          <Scroll label="Deliveries table">
            <table data-testid="deliveries">
              <thead>
                <tr>
                  <th scope="col">Event</th>
                  <th scope="col">Status</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last answer</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {list.map((d) => (
                  <tr key={d.id}>
                    <td>{d.event_type}</td>
                    <td>
                      <Status value={d.status} />
                    </td>
                    <td>{d.attempts}</td>
                    <td>{d.last_status_code ?? d.last_error ?? '–'}</td>
                    <td>{when(d.created_at)}</td>
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
