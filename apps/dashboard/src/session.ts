// The API key lives in sessionStorage (this tab only, gone when it closes), never in the URL.
// Every request goes through one fetch that watches the link: an answer means the API is
// reachable, a failed connection that it is not (the shell shows a banner and retries), and a 401
// that the key was revoked (the shell signs out and says why).
import { type Caller, Crucible } from '@crucible/sdk';
import { createContext, useContext, useEffect, useState } from 'react';

const KEY = 'crucible.apiKey';

/** The API this page was served by: the dashboard is served by the API itself at /dashboard. */
export function apiBase(): string {
  return `${window.location.origin}/v1`;
}

export function storedKey(): string | null {
  return window.sessionStorage.getItem(KEY);
}

export function saveKey(key: string): void {
  window.sessionStorage.setItem(KEY, key);
}

export function forgetKey(): void {
  window.sessionStorage.removeItem(KEY);
}

/** Whether the API answered the last request: pages subscribe to mark their data stale. */
class Link {
  online = true;
  private readonly listeners = new Set<(online: boolean) => void>();
  set(online: boolean): void {
    if (online === this.online) return;
    this.online = online;
    for (const l of this.listeners) l(online);
  }
  subscribe(l: (online: boolean) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

export const link = new Link();

export function useOnline(): boolean {
  const [online, setOnline] = useState(link.online);
  useEffect(() => link.subscribe(setOnline), []);
  return online;
}

/** A client whose requests report the link, and call `onRefused` with the API's reason when the key is refused (401). */
export function clientFor(apiKey: string, onRefused?: (reason: string) => void): Crucible {
  const watched: typeof fetch = async (input, init) => {
    try {
      const res = await fetch(input, init);
      link.set(true);
      if (res.status === 401 && onRefused) {
        const body = (await res
          .clone()
          .json()
          .catch(() => null)) as { error?: { message?: string } } | null;
        onRefused(body?.error?.message ?? 'the API refused this key');
      }
      return res;
    } catch (err) {
      if (!init?.signal?.aborted) link.set(false);
      throw err;
    }
  };
  return new Crucible({ baseUrl: apiBase(), apiKey, fetch: watched });
}

/** Polls the API's health while it is unreachable, until it answers. */
export function useReconnect(): void {
  const online = useOnline();
  useEffect(() => {
    if (online) return;
    const t = setInterval(() => {
      fetch(`${window.location.origin}/health`)
        .then(() => link.set(true))
        .catch(() => {});
    }, 2000);
    return () => clearInterval(t);
  }, [online]);
}

/** What the signed-in key may do (from GET /v1/me). */
export interface Access {
  caller: Caller | null;
  canWrite: boolean;
  isAdmin: boolean;
}

export const AccessContext = createContext<Access>({ caller: null, canWrite: true, isAdmin: false });

export function accessOf(caller: Caller | null): Access {
  const scopes = caller?.api_key.scopes ?? [];
  const has = (s: string) => scopes.includes(s as never) || scopes.includes('operator');
  return { caller, canWrite: caller ? has('write') || has('admin') : false, isAdmin: has('admin') };
}

export function useAccess(): Access {
  return useContext(AccessContext);
}
