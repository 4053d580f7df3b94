// One job: live charts fed by its event stream, the events log, checkpoints, hyperparameters and
// the cancel / pause / resume actions.
import {
  type Checkpoint,
  type Crucible,
  type FineTuningJob,
  isFinalStatus,
  type JobEvent,
  type MetricPoint,
  type StepMetrics,
  type ValidationMetrics,
} from '@crucible/sdk';
import { useEffect, useMemo, useRef, useState } from 'react';
import { LineChart } from '../components/LineChart';
import { ErrorNote, Loading, Scroll, Status, seconds, when } from '../components/ui';
import { downloadModel } from '../download';
import { collect } from '../hooks';
import { href, hrefWith } from '../route';
import { useAccess, useOnline } from '../session';
import { jobProgress, methodOf, ProgressBar, runningTime } from './Jobs';

type Point = Partial<MetricPoint> & { step: number };

/** The numbers a step or validation event adds to its step's point (a dpo job's rewards included). */
function pointOf(d: StepMetrics | ValidationMetrics): Point {
  if (d.kind === 'step') {
    const { kind: _kind, total_steps: _total, ...point } = d;
    return point;
  }
  const { kind: _kind, best: _best, valid_perplexity: _perplexity, ...point } = d;
  return point;
}

function merge(points: Map<number, Point>, d: Point): Map<number, Point> {
  const next = new Map(points);
  next.set(d.step, { ...next.get(d.step), ...d });
  return next;
}

export function JobPage({ crucible, id }: { crucible: Crucible; id: string }) {
  const [job, setJob] = useState<FineTuningJob>();
  const [points, setPoints] = useState<Map<number, Point>>(new Map());
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [checkpoints, setCheckpoints] = useState<Checkpoint[]>([]);
  const [error, setError] = useState<unknown>();
  const [actionError, setActionError] = useState<unknown>();
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [generation, setGeneration] = useState(0); // bumped to reopen the stream after resume
  const [streamLost, setStreamLost] = useState(false); // the stream broke (the API went away)
  const online = useOnline();
  const { canWrite } = useAccess();

  // The recorded metrics first, then the event stream from the start (it replays, then goes live).
  // biome-ignore lint/correctness/useExhaustiveDependencies: generation reopens the stream
  useEffect(() => {
    const ctl = new AbortController();
    (async () => {
      try {
        const refresh = async () => {
          const [j, c] = await Promise.all([crucible.retrieveJob(id), collect(crucible.listCheckpoints(id))]);
          setJob(j);
          setCheckpoints(c);
        };
        const [, m] = await Promise.all([refresh(), crucible.jobMetrics(id, 2000)]);
        setPoints(new Map(m.data.map((p) => [p.step, p])));
        // the API answered: a stream lost before (an outage) is live again from here, even when
        // this one never ends (a long run)
        setStreamLost(false);
        // one connection yields each event once
        const log: JobEvent[] = [];
        for await (const e of crucible.jobEvents(id, { signal: ctl.signal })) {
          log.push(e);
          setEvents([...log]);
          if (e.type === 'metrics' && e.data.kind !== 'checkpoint') {
            const d = e.data;
            setPoints((p) => merge(p, pointOf(d)));
            if (d.kind === 'evaluation' && d.best) await refresh(); // the best checkpoint moved
          } else await refresh(); // a new status or checkpoint
        }
        if (!ctl.signal.aborted) await refresh();
      } catch (err) {
        if (ctl.signal.aborted) return;
        setError(err);
        setStreamLost(true);
      }
    })();
    return () => ctl.abort();
  }, [crucible, id, generation]);

  // the API is back after an outage: reopen the stream (it replays what was missed)
  useEffect(() => {
    if (online && streamLost) {
      setError(undefined);
      setPoints(new Map());
      setGeneration((g) => g + 1);
    }
  }, [online, streamLost]);

  // a job resumed elsewhere (another tab, the API) gets its stream reopened here
  const lastStatus = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (lastStatus.current === 'paused' && job && job.status !== 'paused' && !isFinalStatus(job.status)) setGeneration((g) => g + 1);
    lastStatus.current = job?.status;
  }, [job]);

  // a running job's running time ticks between refreshes of the job object
  const [fetched, setFetched] = useState(() => Date.now());
  const [, setNow] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: notes when each job object arrived
  useEffect(() => setFetched(Date.now()), [job]);
  useEffect(() => {
    if (job?.status !== 'running') return;
    const t = setInterval(() => setNow((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [job?.status]);

  // between events (queued, paused) the job object is refreshed every few seconds
  useEffect(() => {
    if (job && isFinalStatus(job.status)) return;
    const t = setInterval(() => {
      crucible
        .retrieveJob(id)
        .then(setJob)
        .catch(() => {});
    }, 3000);
    return () => clearInterval(t);
  }, [crucible, id, job]);

  // progress from the live stream (the job object's trained_tokens is refreshed less often), and an
  // ETA from the pace of the recent steps
  const live = useMemo(() => {
    let step = 0;
    let total: number | null = null;
    const recent: [number, number][] = []; // [step, time]
    for (const e of events) {
      if (e.type === 'metrics' && e.data.kind === 'step') {
        total = e.data.total_steps;
        step = Math.max(step, e.data.step);
        recent.push([e.data.step, e.created_at]);
      }
    }
    const window = recent.slice(-20);
    const first = window[0];
    const last = window.at(-1);
    const pace = first && last && last[0] > first[0] ? (last[1] - first[1]) / (last[0] - first[0]) : null; // seconds per step
    return { step, total, share: total ? Math.min(1, step / total) : null, eta: pace !== null && total ? Math.max(0, (total - step) * pace) : null };
  }, [events]);

  const series = useMemo(() => {
    const rows = [...points.values()].sort((a, b) => a.step - b.step);
    const pick = (k: keyof Point) => rows.filter((r) => typeof r[k] === 'number').map((r) => [r.step, r[k] as number] as [number, number]);
    return {
      train: pick('train_loss'),
      valid: pick('valid_loss'),
      validAcc: pick('valid_mean_token_accuracy'),
      lr: pick('learning_rate'),
      grad: pick('grad_norm'),
      tps: pick('tokens_per_second'),
      chosen: pick('rewards/chosen'),
      rejected: pick('rewards/rejected'),
      margins: pick('rewards/margins'),
      validMargins: pick('valid_rewards/margins'),
      accuracies: pick('rewards/accuracies'),
      validAccuracies: pick('valid_rewards/accuracies'),
      reward: pick('reward'),
      validReward: pick('valid_reward'),
      kl: pick('kl'),
      varied: pick('frac_reward_nonzero_std'),
    };
  }, [points]);

  async function act(action: 'cancel' | 'pause' | 'resume') {
    setBusy(true);
    setActionError(null);
    try {
      const j = await (action === 'cancel' ? crucible.cancelJob(id) : action === 'pause' ? crucible.pauseJob(id) : crucible.resumeJob(id));
      setJob(j); // a resume reopens the stream through the status change
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  }

  /** A checkpoint evaluated on the job's validation file (its training file without one); the evaluation's page opens. */
  async function evaluate(model: string) {
    if (!job) return;
    setActionError(null);
    try {
      const e = await crucible.createEvaluation({ model, file: job.validation_file ?? job.training_file });
      window.location.hash = href('evaluations', e.id);
    } catch (err) {
      setActionError(err);
    }
  }

  async function download(model: string) {
    setActionError(null);
    setNote(null);
    try {
      // a LoRA or adapter checkpoint holds only its adapter
      const adapter = job ? methodOf(job).includes('·') : false;
      setNote(`Downloaded ${await downloadModel(crucible, model, adapter ? 'adapter' : 'full')}.`);
    } catch (err) {
      setActionError(err);
    }
  }

  if (error && !job) return <ErrorNote error={error} />;
  if (!job) return <Loading />;
  const running = !isFinalStatus(job.status);
  const progress = job.status === 'succeeded' ? 1 : (live.share ?? jobProgress(job));
  const stale = !online || streamLost;
  const locked = busy || stale; // no action on data that may be out of date
  const isCausalJob = (job.method as { type?: string }).type !== 'mlm';
  return (
    <section>
      <p className="crumbs">
        <a href={href('jobs')}>Jobs</a> / {job.id}
      </p>
      <div className="page-head">
        <h1>
          {job.id} <Status value={job.status} />
        </h1>
        {canWrite && (
          <div className="actions">
            {running && job.status !== 'paused' && (
              <button type="button" onClick={() => act('pause')} disabled={locked}>
                Pause
              </button>
            )}
            {job.status === 'paused' && (
              <button type="button" onClick={() => act('resume')} disabled={locked}>
                Resume
              </button>
            )}
            {running && (
              <button type="button" className="danger" onClick={() => act('cancel')} disabled={locked}>
                Cancel
              </button>
            )}
          </div>
        )}
      </div>
      {stale && (
        <p className="warning" role="status" data-testid="stale">
          Out of date: {streamLost ? 'the live stream is lost' : 'the API cannot be reached'}. The page catches up when the API is back; until then the buttons
          are off.
        </p>
      )}
      <ErrorNote error={stale ? null : (error ?? actionError)} />
      {job.error && (
        <p className="error" role="alert">
          {job.error.message} ({job.error.code})
        </p>
      )}
      <dl className="facts">
        <dt>Model</dt>
        <dd>{job.model}</dd>
        <dt>Method</dt>
        <dd>{methodOf(job)}</dd>
        <dt>Progress</dt>
        <dd>
          <ProgressBar value={progress} label="job progress" />
          {live.total ? (
            <span className="muted" data-testid="step-counter">
              {' '}
              step {live.step} of {live.total}
              {running && live.eta !== null ? `, about ${seconds(live.eta)} left` : ''}
            </span>
          ) : null}
        </dd>
        <dt>Created</dt>
        <dd>{when(job.created_at)}</dd>
        <dt>Running time</dt>
        <dd title="Time spent running: pauses and waits in the queue do not count" data-testid="running-time">
          {job.status === 'running' ? seconds(job.running_seconds + (Date.now() - fetched) / 1000) : runningTime(job)}
        </dd>
        <dt>Training file</dt>
        <dd>
          <a href={href('datasets', job.training_file)}>{job.training_file}</a>
        </dd>
        <dt>Result</dt>
        <dd>{job.fine_tuned_model ? <a href={href('models', job.fine_tuned_model)}>{job.fine_tuned_model}</a> : '–'}</dd>
        <dt>Backend</dt>
        <dd>{job.backend ?? '–'}</dd>
        <dt>Precision</dt>
        <dd>{job.precision ?? 'chosen by the worker'}</dd>
        <dt>Workers</dt>
        <dd data-testid="workers">
          {job.resources.workers}
          {job.ranks && job.ranks.length > 1 ? ` (${job.ranks.map((r) => `rank ${r.rank} on ${r.worker}`).join(', ')})` : ''}
        </dd>
      </dl>
      <div className={stale ? 'charts stale' : 'charts'}>
        <LineChart
          title="Loss"
          series={[
            { name: 'train', color: '#2563eb', points: series.train },
            { name: 'validation', color: '#dc2626', points: series.valid },
          ]}
        />
        {series.validAcc.length > 0 && (
          <LineChart title="Validation token accuracy" series={[{ name: 'validation', color: '#dc2626', points: series.validAcc }]} />
        )}
        <LineChart title="Learning rate" series={[{ name: 'lr', color: '#059669', points: series.lr }]} />
        <LineChart title="Gradient norm" series={[{ name: 'grad norm', color: '#d97706', points: series.grad }]} />
        <LineChart title="Tokens per second" series={[{ name: 'tokens/s', color: '#7c3aed', points: series.tps }]} />
        {series.margins.length + series.validMargins.length > 0 && (
          <>
            <LineChart
              title="Rewards"
              series={[
                { name: 'chosen', color: '#059669', points: series.chosen },
                { name: 'rejected', color: '#dc2626', points: series.rejected },
              ]}
            />
            <LineChart
              title="Reward margin"
              series={[
                { name: 'train', color: '#2563eb', points: series.margins },
                { name: 'validation', color: '#dc2626', points: series.validMargins },
              ]}
            />
            <LineChart
              title="Reward accuracy"
              series={[
                { name: 'train', color: '#2563eb', points: series.accuracies },
                { name: 'validation', color: '#dc2626', points: series.validAccuracies },
              ]}
            />
          </>
        )}
        {series.reward.length + series.validReward.length > 0 && (
          <>
            <LineChart
              title="Mean reward"
              series={[
                { name: 'train', color: '#2563eb', points: series.reward },
                { name: 'validation', color: '#dc2626', points: series.validReward },
              ]}
            />
            <LineChart title="KL to the starting model" series={[{ name: 'kl', color: '#d97706', points: series.kl }]} />
            <LineChart title="Groups with varied rewards" series={[{ name: 'share', color: '#059669', points: series.varied }]} />
          </>
        )}
      </div>
      <div className="columns">
        <section aria-labelledby="ckpt-h">
          <h2 id="ckpt-h">Checkpoints</h2>
          {checkpoints.length === 0 ? (
            <p className="muted">No checkpoints yet.</p>
          ) : (
            <Scroll label="Checkpoints table">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Step</th>
                    <th scope="col">Checkpoint model</th>
                    <th scope="col">Valid loss</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {checkpoints.map((c) => {
                    const m = c.metrics as Record<string, number | null>;
                    const name = c.fine_tuned_model_checkpoint;
                    return (
                      <tr key={c.id} data-checkpoint={c.step_number}>
                        <td>
                          {c.step_number}
                          {(c as { best?: boolean }).best ? (
                            <>
                              {' '}
                              <span className="tag">best</span>
                            </>
                          ) : null}
                        </td>
                        <td>
                          <code>{name}</code>
                        </td>
                        <td>{m.valid_loss != null ? m.valid_loss.toFixed(4) : '–'}</td>
                        <td>
                          <div className="actions">
                            {canWrite && (
                              <button
                                type="button"
                                className="link"
                                disabled={locked}
                                onClick={() => evaluate(name)}
                                aria-label={`Evaluate step ${c.step_number}`}
                              >
                                Evaluate
                              </button>
                            )}
                            {isCausalJob && (
                              <a href={hrefWith({ mode: 'chat' }, 'models', name)} aria-label={`Playground: step ${c.step_number}`}>
                                Playground
                              </a>
                            )}
                            <button
                              type="button"
                              className="link"
                              disabled={locked}
                              onClick={() => download(name)}
                              aria-label={`Download step ${c.step_number}`}
                            >
                              Download
                            </button>
                            {canWrite && (
                              <a
                                href={hrefWith({ model: name, file: job.training_file }, 'jobs', 'new')}
                                aria-label={`Fine-tune from here: step ${c.step_number}`}
                              >
                                Fine-tune from here
                              </a>
                            )}
                          </div>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </Scroll>
          )}
          {note && (
            <p className="ok" role="status">
              {note}
            </p>
          )}
          <h2>Hyperparameters</h2>
          <Scroll label="Hyperparameters" as="pre" className="json">
            {JSON.stringify(job.hyperparameters, null, 2)}
          </Scroll>
        </section>
        <section aria-labelledby="events-h">
          <h2 id="events-h">Events</h2>
          <Scroll label="Events log" className="events-wrap">
            <ol className="events" aria-live="polite" data-testid="events">
              {events
                .slice(-300)
                .reverse()
                .map((e) => (
                  <li key={e.id} className={`level-${e.level}`}>
                    <time>{new Date(e.created_at * 1000).toLocaleTimeString()}</time> {e.message}
                  </li>
                ))}
            </ol>
          </Scroll>
        </section>
      </div>
    </section>
  );
}
