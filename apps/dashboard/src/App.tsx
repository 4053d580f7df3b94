// The dashboard shell: sign-in with an API key, then navigation between the pages. A key the API
// refuses (revoked) signs the user out with the API's reason; an API that cannot be reached gets a
// banner while the shell retries.
import type { Caller, Crucible } from '@crucible/sdk';
import { type FormEvent, useEffect, useMemo, useRef, useState } from 'react';
import { ErrorNote } from './components/ui';
import { DatasetPage, DatasetsPage } from './pages/Datasets';
import { EvaluationPage, EvaluationsPage } from './pages/Evaluations';
import { JobPage } from './pages/Job';
import { JobsPage } from './pages/Jobs';
import { ModelPage, ModelsPage } from './pages/Models';
import { NewJobPage } from './pages/NewJob';
import { ProjectPage } from './pages/Project';
import { href, type Route, useRoute } from './route';
import { AccessContext, accessOf, clientFor, forgetKey, saveKey, storedKey, useOnline, useReconnect } from './session';
import { ThemeToggle } from './theme';

export function App() {
  const [key, setKey] = useState(storedKey);
  const [signedOut, setSignedOut] = useState<string | null>(null);
  const crucible = useMemo(
    () =>
      key
        ? clientFor(key, (reason) => {
            forgetKey();
            setKey(null);
            setSignedOut(reason);
          })
        : null,
    [key],
  );
  if (!crucible) {
    return (
      <SignIn
        reason={signedOut}
        onSignedIn={(k) => {
          saveKey(k);
          setSignedOut(null);
          setKey(k);
        }}
      />
    );
  }
  return (
    <Shell
      crucible={crucible}
      onSignOut={() => {
        forgetKey();
        setKey(null);
      }}
    />
  );
}

function SignIn({ onSignedIn, reason }: { onSignedIn: (key: string) => void; reason: string | null }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const keyInput = useRef<HTMLInputElement>(null);
  useEffect(() => keyInput.current?.focus(), []);
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const key = String(new FormData(e.currentTarget).get('apiKey') ?? '').trim();
    if (!key) return setError(new Error('Enter an API key.'));
    setBusy(true);
    setError(null);
    try {
      await clientFor(key).listJobs().next(); // answers 401 for a wrong key
      onSignedIn(key);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <main className="signin">
      <h1>Crucible</h1>
      {reason && (
        <p className="error" role="alert" data-testid="signed-out">
          Signed out: {reason}.
        </p>
      )}
      <p className="muted">Sign in with a project API key. It is kept in this browser tab only.</p>
      <form onSubmit={submit} method="post" action="#">
        <label htmlFor="apiKey">API key</label>
        <input id="apiKey" name="apiKey" type="password" autoComplete="off" placeholder="sk-crucible-..." required ref={keyInput} />
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <ErrorNote error={error} />
      </form>
    </main>
  );
}

const NAV: [Route['page'][], string, string][] = [
  [['jobs', 'job', 'new-job'], 'Jobs', href('jobs')],
  [['datasets', 'dataset'], 'Datasets', href('datasets')],
  [['models', 'model'], 'Models', href('models')],
  [['evaluations', 'evaluation'], 'Evaluations', href('evaluations')],
  [['project'], 'Project', href('project')],
];

function Shell({ crucible, onSignOut }: { crucible: Crucible; onSignOut: () => void }) {
  const route = useRoute();
  const online = useOnline();
  useReconnect();
  // what this key may do: buttons it cannot use are not shown
  const [caller, setCaller] = useState<Caller | null>(null);
  useEffect(() => {
    crucible
      .me()
      .then(setCaller)
      .catch(() => {});
  }, [crucible]);
  const access = useMemo(() => accessOf(caller), [caller]);
  const main = useRef<HTMLElement>(null);
  const navigated = useRef(false);
  // focus moves to the page on every navigation, but not on the first page: there the first Tab
  // reaches the skip link
  // biome-ignore lint/correctness/useExhaustiveDependencies: focus moves on every navigation
  useEffect(() => {
    if (navigated.current) main.current?.focus({ preventScroll: true });
    navigated.current = true;
  }, [route]);
  return (
    <AccessContext.Provider value={access}>
      <button type="button" className="skip" onClick={() => main.current?.focus()}>
        Skip to content
      </button>
      <header className="top">
        <span className="brand">Crucible</span>
        <nav aria-label="Main">
          {NAV.map(([pages, label, link]) => (
            <a key={label} href={link} aria-current={pages.includes(route.page) ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        {caller && (
          <span className="who" title={`key ${caller.api_key.prefix}…`}>
            {caller.project.name} · {caller.api_key.scopes.join(', ')}
          </span>
        )}
        <a className="docs" href="/docs" target="_blank" rel="noreferrer">
          API reference
        </a>
        <ThemeToggle />
        <button type="button" className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      {!online && (
        <div className="banner" role="alert" data-testid="offline">
          API unreachable, retrying… What you see may be out of date.
        </div>
      )}
      <main id="main" ref={main} tabIndex={-1}>
        <Page route={route} crucible={crucible} />
      </main>
    </AccessContext.Provider>
  );
}

function Page({ route, crucible }: { route: Route; crucible: Crucible }) {
  switch (route.page) {
    case 'jobs':
      return <JobsPage crucible={crucible} />;
    case 'job':
      return <JobPage crucible={crucible} id={route.id} key={route.id} />;
    case 'new-job':
      return <NewJobPage crucible={crucible} query={route.query} />;
    case 'datasets':
      return <DatasetsPage crucible={crucible} />;
    case 'dataset':
      return <DatasetPage crucible={crucible} id={route.id} key={route.id} />;
    case 'models':
      return <ModelsPage crucible={crucible} />;
    case 'model':
      return <ModelPage crucible={crucible} id={route.id} key={route.id} query={route.query} />;
    case 'evaluations':
      return <EvaluationsPage crucible={crucible} />;
    case 'evaluation':
      return <EvaluationPage crucible={crucible} id={route.id} key={route.id} />;
    case 'project':
      return <ProjectPage crucible={crucible} />;
  }
}
