// A training job's lifecycle: its statuses, the transitions allowed between them and the terminal
// set. Every status change anywhere (API, worker, reconciler) goes through `allowedSources`, so a
// transition this table forbids is refused in one place (the job repository).
//
//   queued ──▶ validating_files ──▶ running ──▶ succeeded | failed | cancelled
//     ▲              │                 │
//     └──────────────┴─────────────────┘  worker lost or shut down: queued again (new attempt)
//   queued | validating_files | running ──▶ paused ──▶ queued (resume)
//   any unfinished status ──▶ cancelled | failed

export const JOB_STATUSES = ['validating_files', 'queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ['validating_files', 'paused', 'cancelled', 'failed'],
  validating_files: ['running', 'queued', 'paused', 'cancelled', 'failed'],
  running: ['succeeded', 'queued', 'paused', 'cancelled', 'failed'],
  paused: ['queued', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

export const TERMINAL_STATUSES: readonly JobStatus[] = JOB_STATUSES.filter((s) => TRANSITIONS[s].length === 0);

/** Statuses in which a worker owns (or should own) the job: what the reconciler watches. */
export const DISPATCHED_STATUSES: readonly JobStatus[] = ['queued', 'validating_files', 'running'];

/** Statuses with a worker actually on the job (heart-beating). */
export const WORKING_STATUSES: readonly JobStatus[] = ['validating_files', 'running'];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** True when nothing more will happen to the job without a user's action (terminal or paused). */
export function isSettled(status: JobStatus): boolean {
  return isTerminal(status) || status === 'paused';
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The statuses from which `to` may be reached, narrowed to `from` when given. */
export function allowedSources(to: JobStatus, from?: readonly JobStatus[]): JobStatus[] {
  return JOB_STATUSES.filter((s) => canTransition(s, to) && (!from || from.includes(s)));
}

export function isJobStatus(s: string): s is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(s);
}
