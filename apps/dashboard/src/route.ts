// Hash routes (#/jobs/ftjob-1): the API serves one static page, and links work without a server fallback.
import { useEffect, useState } from 'react';

export type Route =
  | { page: 'jobs' }
  | { page: 'job'; id: string }
  | { page: 'new-job' }
  | { page: 'datasets' }
  | { page: 'dataset'; id: string }
  | { page: 'models' }
  | { page: 'model'; id: string }
  | { page: 'evaluations' };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const [head, id] = parts;
  if (head === 'jobs' && id === 'new') return { page: 'new-job' };
  if (head === 'jobs' && id) return { page: 'job', id };
  if (head === 'datasets' && id) return { page: 'dataset', id };
  if (head === 'datasets') return { page: 'datasets' };
  if (head === 'models' && id) return { page: 'model', id };
  if (head === 'models') return { page: 'models' };
  if (head === 'evaluations') return { page: 'evaluations' };
  return { page: 'jobs' };
}

export function href(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}
