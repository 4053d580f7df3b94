// Hash routes (#/jobs/ftjob-1): the API serves one static page, and links work without a server
// fallback. A route may carry a query (#/jobs/new?model=ft:...), which prefills a form.
import { useEffect, useMemo, useState } from 'react';

export type Route =
  | { page: 'jobs' }
  | { page: 'job'; id: string }
  | { page: 'new-job'; query: URLSearchParams }
  | { page: 'datasets' }
  | { page: 'dataset'; id: string }
  | { page: 'models' }
  | { page: 'model'; id: string; query: URLSearchParams }
  | { page: 'evaluations' }
  | { page: 'evaluation'; id: string }
  | { page: 'project' };

export function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#\/?/, '').split('?');
  const query = new URLSearchParams(search);
  const [head, id] = path.split('/').map(decodeURIComponent);
  if (head === 'jobs' && id === 'new') return { page: 'new-job', query };
  if (head === 'jobs' && id) return { page: 'job', id };
  if (head === 'datasets' && id) return { page: 'dataset', id };
  if (head === 'datasets') return { page: 'datasets' };
  if (head === 'models' && id) return { page: 'model', id, query };
  if (head === 'models') return { page: 'models' };
  if (head === 'evaluations' && id) return { page: 'evaluation', id };
  if (head === 'evaluations') return { page: 'evaluations' };
  if (head === 'project') return { page: 'project' };
  return { page: 'jobs' };
}

export function href(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

/** A route with a query: hrefWith({ model: 'ft:x' }, 'jobs', 'new') -> #/jobs/new?model=ft%3Ax */
export function hrefWith(query: Record<string, string>, ...parts: string[]): string {
  return `${href(...parts)}?${new URLSearchParams(query)}`;
}

export function useRoute(): Route {
  const [hash, setHash] = useState(() => window.location.hash);
  useEffect(() => {
    const on = () => setHash(window.location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return useMemo(() => parseRoute(hash), [hash]);
}
