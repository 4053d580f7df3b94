// Jobs: every job of the project with status, model, method, progress, running time and its
// creation, searchable, filtered by status, model and method, and sorted.
import type { Crucible, FineTuningJob } from '@crucible/sdk';
import { useMemo, useState } from 'react';
import { Listing, Scroll, Status, seconds, when } from '../components/ui';
import { collect, useLoad } from '../hooks';
import { href } from '../route';
import { useAccess } from '../session';

/** Share of the job's steps done, from its trained tokens and resolved hyperparameters. */
export function jobProgress(job: FineTuningJob): number | null {
  if (job.status === 'succeeded') return 1;
  const h = job.hyperparameters as Record<string, unknown>;
  const steps = Number(h.max_steps);
  const perStep = Number(h.batch_size) * Number(h.block_size) * Number(h.gradient_accumulation_steps ?? 1);
  if (!(steps > 0 && perStep > 0) || job.trained_tokens == null) return null;
  return Math.min(1, job.trained_tokens / (steps * perStep));
}

export function methodOf(job: FineTuningJob): string {
  const m = job.method as { type?: string } & Record<string, { peft?: { type?: string } } | string | undefined>;
  const inner = m.type ? (m[m.type] as { peft?: { type?: string } } | undefined) : undefined;
  const peft = inner?.peft?.type;
  return peft && peft !== 'full' ? `${m.type} · ${peft}` : (m.type ?? '–');
}

export function ProgressBar({ value, label }: { value: number | null; label: string }) {
  if (value === null) return <span className="muted">–</span>;
  return (
    <span className="progress-cell">
      <progress max={1} value={value} aria-label={label} /> {Math.round(value * 100)}%
    </span>
  );
}

/** The running time of a job (its pauses and waits in the queue excluded). */
export function runningTime(job: FineTuningJob): string {
  return seconds(job.running_seconds);
}

type Sort = 'created-desc' | 'created-asc' | 'running-desc' | 'status';

const SORTS: Record<Sort, (a: FineTuningJob, b: FineTuningJob) => number> = {
  'created-desc': (a, b) => b.created_at - a.created_at,
  'created-asc': (a, b) => a.created_at - b.created_at,
  'running-desc': (a, b) => b.running_seconds - a.running_seconds,
  status: (a, b) => a.status.localeCompare(b.status) || b.created_at - a.created_at,
};

/** The jobs a search and the filters keep: the search matches id, model, result, suffix and file. */
export function filterJobs(jobs: FineTuningJob[], f: { q: string; status: string; model: string; method: string; sort: Sort }): FineTuningJob[] {
  const q = f.q.trim().toLowerCase();
  return jobs
    .filter(
      (j) =>
        (!q || [j.id, j.model, j.fine_tuned_model, j.user_provided_suffix, j.training_file].some((v) => v?.toLowerCase().includes(q))) &&
        (!f.status || j.status === f.status) &&
        (!f.model || j.model === f.model) &&
        (!f.method || (j.method as { type?: string }).type === f.method),
    )
    .sort(SORTS[f.sort]);
}

export function JobsPage({ crucible }: { crucible: Crucible }) {
  const jobs = useLoad(() => collect(crucible.listJobs(), 500), [crucible], 3000);
  const { canWrite } = useAccess();
  const [filters, setFilters] = useState({ q: '', status: '', model: '', method: '', sort: 'created-desc' as Sort });
  const set = (k: keyof typeof filters) => (e: { target: { value: string } }) => setFilters((f) => ({ ...f, [k]: e.target.value }));
  const all = jobs.value ?? [];
  const options = (pick: (j: FineTuningJob) => string | undefined) => [...new Set(all.map(pick).filter(Boolean) as string[])].sort();
  const shown = useMemo(() => (jobs.value ? filterJobs(jobs.value, filters) : undefined), [jobs.value, filters]);
  return (
    <section>
      <div className="page-head">
        <h1>Jobs</h1>
        {canWrite && (
          <a className="button" href={href('jobs', 'new')}>
            New job
          </a>
        )}
      </div>
      {all.length > 0 && (
        <search className="filters" aria-label="Find jobs">
          <div className="field">
            <label htmlFor="jobs-q">Search</label>
            <input id="jobs-q" type="search" value={filters.q} onChange={set('q')} placeholder="id, model, suffix, file" />
          </div>
          <div className="field">
            <label htmlFor="jobs-status">Status</label>
            <select id="jobs-status" value={filters.status} onChange={set('status')}>
              <option value="">any</option>
              {options((j) => j.status).map((v) => (
                <option key={v}>{v}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="jobs-model">Model</label>
            <select id="jobs-model" value={filters.model} onChange={set('model')}>
              <option value="">any</option>
              {options((j) => j.model).map((v) => (
                <option key={v}>{v}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="jobs-method">Method</label>
            <select id="jobs-method" value={filters.method} onChange={set('method')}>
              <option value="">any</option>
              {options((j) => (j.method as { type?: string }).type).map((v) => (
                <option key={v}>{v}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="jobs-sort">Sort</label>
            <select id="jobs-sort" value={filters.sort} onChange={set('sort')}>
              <option value="created-desc">newest first</option>
              <option value="created-asc">oldest first</option>
              <option value="running-desc">longest running</option>
              <option value="status">status</option>
            </select>
          </div>
          <p className="muted" aria-live="polite">
            {shown?.length} of {all.length}
          </p>
        </search>
      )}
      <Listing
        load={{ ...jobs, value: all.length === 0 ? jobs.value : shown }}
        empty={
          all.length > 0 ? (
            'No job matches the search and filters.'
          ) : (
            <>
              No jobs yet. <a href={href('datasets')}>Upload a dataset</a>, then <a href={href('jobs', 'new')}>start a job</a>.
            </>
          )
        }
      >
        {(list) => (
          <Scroll label="Jobs">
            <table>
              <thead>
                <tr>
                  <th scope="col">Job</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="wide">
                    Model
                  </th>
                  <th scope="col" className="wide">
                    Method
                  </th>
                  <th scope="col" className="wide">
                    Progress
                  </th>
                  <th scope="col" className="wide">
                    Running time
                  </th>
                  <th scope="col" className="wide">
                    Created
                  </th>
                  <th scope="col">Result</th>
                </tr>
              </thead>
              <tbody>
                {list.map((j) => (
                  <tr key={j.id} data-job={j.id}>
                    <td>
                      <a href={href('jobs', j.id)}>{j.id}</a>
                    </td>
                    <td>
                      <Status value={j.status} />
                    </td>
                    <td className="wide">{j.model}</td>
                    <td className="wide">{methodOf(j)}</td>
                    <td className="wide">
                      <ProgressBar value={jobProgress(j)} label={`progress of ${j.id}`} />
                    </td>
                    <td className="wide">{runningTime(j)}</td>
                    <td className="wide">{when(j.created_at)}</td>
                    <td>{j.fine_tuned_model ? <a href={href('models', j.fine_tuned_model)}>{j.fine_tuned_model}</a> : '–'}</td>
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
