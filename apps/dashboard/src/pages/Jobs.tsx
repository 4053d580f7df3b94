// Jobs: every job of the project with status, model, method, progress and duration.
import type { Crucible, FineTuningJob } from '@crucible/sdk';
import { duration, Listing, Scroll, Status } from '../components/ui';
import { collect, useLoad } from '../hooks';
import { href } from '../route';

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

export function JobsPage({ crucible }: { crucible: Crucible }) {
  const jobs = useLoad(() => collect(crucible.listJobs(), 200), [crucible], 3000);
  return (
    <section>
      <div className="page-head">
        <h1>Jobs</h1>
        <a className="button" href={href('jobs', 'new')}>
          New job
        </a>
      </div>
      <Listing
        load={jobs}
        empty={
          <>
            No jobs yet. <a href={href('datasets')}>Upload a dataset</a>, then <a href={href('jobs', 'new')}>start a job</a>.
          </>
        }
      >
        {(list) => (
          <Scroll label="Jobs">
            <table>
              <thead>
                <tr>
                  <th scope="col">Job</th>
                  <th scope="col">Status</th>
                  <th scope="col">Model</th>
                  <th scope="col">Method</th>
                  <th scope="col">Progress</th>
                  <th scope="col">Duration</th>
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
                    <td>{j.model}</td>
                    <td>{methodOf(j)}</td>
                    <td>
                      <ProgressBar value={jobProgress(j)} label={`progress of ${j.id}`} />
                    </td>
                    <td>{duration(j.created_at, j.finished_at)}</td>
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
