// Small shared pieces: status badges, error and empty states, formatting.
import { CrucibleApiError } from '@crucible/sdk';
import type { ReactNode } from 'react';

export function Status({ value }: { value: string }) {
  return <span className={`status status-${value}`}>{value.replace(/_/g, ' ')}</span>;
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof CrucibleApiError ? `${error.error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
  return (
    <p className="error" role="alert">
      {text}
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty-state">{children}</div>;
}

export function Loading() {
  return (
    <p className="muted" aria-live="polite">
      Loading…
    </p>
  );
}

export function when(seconds: number | null | undefined): string {
  if (!seconds) return '–';
  return new Date(seconds * 1000).toLocaleString();
}

export function duration(from: number, to: number | null | undefined): string {
  return seconds((to ?? Date.now() / 1000) - from);
}

/** A span of seconds: "42s", "3m 5s", "2h 10m". */
export function seconds(n: number): string {
  const s = Math.max(0, Math.round(n));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** A count and its noun, singular for 1: "1 record", "2 records". */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** A region that scrolls (wide tables, long JSON, the events log): focusable and labelled, so it scrolls from the keyboard too. */
export function Scroll({
  label,
  children,
  as = 'div',
  className = 'table-wrap',
}: {
  label: string;
  children: ReactNode;
  as?: 'div' | 'pre';
  className?: string;
}) {
  const Tag = as;
  return (
    <Tag className={className} tabIndex={0} role="region" aria-label={label}>
      {children}
    </Tag>
  );
}

/** A loaded list: its error, "Loading…" until it arrives, the empty state, or the items. */
export function Listing<T>({ load, empty, children }: { load: { value?: T[]; error?: unknown }; empty: ReactNode; children: (items: T[]) => ReactNode }) {
  return (
    <>
      <ErrorNote error={load.error} />
      {!load.value ? !load.error && <Loading /> : load.value.length === 0 ? <Empty>{empty}</Empty> : children(load.value)}
    </>
  );
}

/** The question before a delete: the confirming button does it, the other one keeps the thing. */
export function ConfirmDelete({ question, confirm, onConfirm, onKeep }: { question: string; confirm: string; onConfirm: () => void; onKeep: () => void }) {
  return (
    <div className="warning" role="alertdialog" aria-labelledby="confirm-delete" data-testid="confirm-delete">
      <p id="confirm-delete">{question}</p>
      <div className="actions">
        <button type="button" className="danger" onClick={onConfirm}>
          {confirm}
        </button>
        <button type="button" onClick={onKeep}>
          Keep it
        </button>
      </div>
    </div>
  );
}
