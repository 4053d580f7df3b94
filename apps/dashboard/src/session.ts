// The API key lives in sessionStorage (this tab only, gone when it closes), never in the URL.
import { Crucible } from '@crucible/sdk';

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

export function clientFor(apiKey: string): Crucible {
  return new Crucible({ baseUrl: apiBase(), apiKey });
}
