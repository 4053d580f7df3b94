// Data loading for pages: run a loader, keep its value/error, reload on demand or on an interval.
import { useCallback, useEffect, useRef, useState } from 'react';

export function useLoad<T>(load: () => Promise<T>, deps: unknown[], pollMs?: number): { value?: T; error?: unknown; reload: () => void } {
  const [state, setState] = useState<{ value?: T; error?: unknown }>({});
  const loader = useRef(load);
  loader.current = load;
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: deps are the caller's
  useEffect(() => {
    let live = true;
    loader
      .current()
      .then((value) => live && setState({ value }))
      .catch((error) => live && setState((s) => ({ value: s.value, error })));
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  useEffect(() => {
    if (!pollMs) return;
    const t = setInterval(reload, pollMs);
    return () => clearInterval(t);
  }, [pollMs, reload]);
  return { ...state, reload };
}

/** All items of an async iterator (a paginated list), capped. */
export async function collect<T>(it: AsyncIterable<T>, max = 500): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) {
    out.push(x);
    if (out.length >= max) break;
  }
  return out;
}
