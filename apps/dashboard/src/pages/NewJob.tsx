// New job: dataset, base model or preset, method and hyperparameters. The method is guessed from
// the file's format; as the form changes, the API's estimate shows the steps, epochs, tokens and
// time it would make and every default it would use (the fields' placeholders), with a warning
// when that is too few steps to learn. The API validates; its messages are shown at the field
// they name (`param`), a missing scope or anything else above the form.
import { type CreateJobRequest, type Crucible, CrucibleApiError, type FileObject, type JobEstimate, type Model } from '@crucible/sdk';
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { ErrorNote, seconds } from '../components/ui';
import { collect, useLoad } from '../hooks';
import { href } from '../route';
import { useAccess } from '../session';

/** Fewer optimizer steps than this rarely teach a model anything: the form warns. */
export const FEW_STEPS = 50;

type Method = 'pretrain' | 'mlm' | 'supervised' | 'dpo' | 'reinforcement';

/** The method a file's format calls for (mlm for text on a bert model). */
export function methodForFormat(format: string | null | undefined, arch?: string): Method | null {
  switch (format) {
    case 'text':
    case 'jsonl_text':
      return arch === 'bert' ? 'mlm' : 'pretrain';
    case 'jsonl_prompt_completion':
    case 'jsonl_chat':
      return 'supervised';
    case 'jsonl_preference':
      return 'dpo';
    case 'jsonl_reinforcement':
      return 'reinforcement';
    default:
      return null;
  }
}

const HYPER: { name: string; label: string; kind: 'int' | 'number'; hint: string; only?: Method }[] = [
  { name: 'max_steps', label: 'Max steps', kind: 'int', hint: 'Optimizer steps; overrides epochs.' },
  { name: 'n_epochs', label: 'Epochs', kind: 'int', hint: 'Passes over the data when max steps is empty; auto scales with the data.' },
  { name: 'batch_size', label: 'Batch size', kind: 'int', hint: 'Sequences (pairs, prompts) per micro-batch.' },
  { name: 'block_size', label: 'Block size', kind: 'int', hint: 'Context length; default: the model’s.' },
  { name: 'learning_rate', label: 'Learning rate', kind: 'number', hint: 'Peak learning rate.' },
  { name: 'warmup_steps', label: 'Warmup steps', kind: 'int', hint: 'Steps of linear warmup before the cosine decay.' },
  { name: 'gradient_accumulation_steps', label: 'Gradient accumulation', kind: 'int', hint: 'Micro-batches per optimizer step.' },
  { name: 'weight_decay', label: 'Weight decay', kind: 'number', hint: 'AdamW’s decoupled weight decay.' },
  { name: 'beta', label: 'DPO beta', kind: 'number', hint: 'How far the model may move from the reference.', only: 'dpo' },
  { name: 'group_size', label: 'Group size', kind: 'int', hint: 'Answers sampled per prompt.', only: 'reinforcement' },
  { name: 'kl_beta', label: 'KL beta', kind: 'number', hint: 'Pull toward the starting model.', only: 'reinforcement' },
  { name: 'eval_interval', label: 'Eval interval', kind: 'int', hint: 'Steps between validations; 0: at the end.' },
  { name: 'checkpoint_interval', label: 'Checkpoint interval', kind: 'int', hint: 'Steps between checkpoints.' },
  { name: 'log_interval', label: 'Log interval', kind: 'int', hint: 'Steps between metric events.' },
];

const GRADER_EXAMPLE = JSON.stringify({
  type: 'string_check',
  name: 'answer',
  input: '{{sample.output_text}}',
  reference: '{{item.answer}}',
  operation: 'eq',
});

/** The form field an API error names: `method.pretrain.hyperparameters.max_steps` -> `max_steps`. */
export function fieldOf(param: string | null): string | null {
  if (!param) return null;
  const hp = /hyperparameters\.([a-z_]+)/.exec(param);
  if (hp) return hp[1] ?? null;
  if (/^method\.[a-z]+\.peft/.test(param)) return 'peft';
  if (param.startsWith('method.reinforcement.grader')) return 'grader';
  if (param.startsWith('method')) return 'method';
  return param.split('.')[0] ?? null;
}

/** The request body the form's fields make; a field error (bad JSON) instead when there is one. */
function bodyOf(form: HTMLFormElement): { body: CreateJobRequest } | { field: string; message: string } {
  const f = new FormData(form);
  const str = (k: string) => String(f.get(k) ?? '').trim();
  const hyperparameters: Record<string, unknown> = {};
  for (const h of HYPER) {
    const v = str(h.name);
    if (v !== '') hyperparameters[h.name] = h.kind === 'int' && /^-?\d+$/.test(v) ? Number.parseInt(v, 10) : Number(v);
  }
  const extra = str('extra');
  if (extra) {
    try {
      Object.assign(hyperparameters, JSON.parse(extra));
    } catch {
      return { field: 'extra', message: 'Not valid JSON: write an object such as {"warmup_steps": 10}.' };
    }
  }
  const type = str('method') as Method;
  const peft = str('peft');
  const inner: Record<string, unknown> = { hyperparameters };
  if (type === 'reinforcement') {
    try {
      inner.grader = JSON.parse(str('grader'));
    } catch {
      return { field: 'grader', message: 'Not valid JSON: write a grader object such as the example.' };
    }
  }
  if (peft && peft !== 'full') inner.peft = peft === 'lora' ? { type: 'lora', rank: Number(str('rank') || 8) } : { type: peft };
  const body = {
    model: str('model'),
    training_file: str('training_file'),
    ...(str('validation_file') ? { validation_file: str('validation_file') } : {}),
    ...(str('suffix') ? { suffix: str('suffix') } : {}),
    method: { type, [type]: inner },
  } as unknown as CreateJobRequest;
  return { body };
}

/** A value as a field's placeholder shows it. */
function shown(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export function NewJobPage({ crucible, query }: { crucible: Crucible; query?: URLSearchParams }) {
  const files = useLoad(() => collect(crucible.listFiles()), [crucible]);
  const models = useLoad(() => collect(crucible.listModels()), [crucible]);
  const { canWrite } = useAccess();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [method, setMethod] = useState<Method>('pretrain');
  const methodChosen = useRef(false); // the user picked one: no more guessing
  const [estimate, setEstimate] = useState<{ value?: JobEstimate; error?: unknown; pending?: boolean }>({});
  const form = useRef<HTMLFormElement>(null);
  const [changes, setChanges] = useState(0);
  const prefill = { model: query?.get('model') ?? '', file: query?.get('file') ?? '' };

  const fileOf = (id: string): FileObject | undefined => files.value?.find((x) => x.id === id);
  const modelOf = (id: string): Model | undefined => models.value?.find((x) => x.id === id);
  /** The method the chosen file and model call for, unless the user chose one. */
  function guess() {
    if (methodChosen.current || !form.current) return;
    const f = new FormData(form.current);
    const file = fileOf(String(f.get('training_file') ?? ''));
    const m = methodForFormat(file?.format, modelOf(String(f.get('model') ?? ''))?.arch ?? undefined);
    if (m) setMethod(m);
  }
  // once the lists arrive, a prefilled file or model guesses the method
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs when the lists arrive
  useEffect(() => {
    guess();
    setChanges((c) => c + 1);
  }, [files.value, models.value]);

  // the live estimate: the form as it stands, a moment after the last change
  // biome-ignore lint/correctness/useExhaustiveDependencies: changes is the trigger
  useEffect(() => {
    if (!form.current) return;
    const made = bodyOf(form.current);
    if (!canWrite || !('body' in made) || !made.body.model || !made.body.training_file) {
      setEstimate({});
      return;
    }
    let live = true;
    setEstimate((e) => ({ ...e, pending: true }));
    const t = setTimeout(() => {
      crucible
        .estimateJob(made.body)
        .then((value) => live && setEstimate({ value }))
        .catch((error) => live && setEstimate({ error }));
    }, 400);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [crucible, changes, method, canWrite]);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const made = bodyOf(e.currentTarget);
    setErrors({});
    setFormError(null);
    if ('field' in made) {
      setErrors({ [made.field]: made.message });
      return;
    }
    const body = made.body;
    setBusy(true);
    try {
      const job = await crucible.createJob(body);
      window.location.hash = href('jobs', job.id);
    } catch (err) {
      // a missing scope (403) concerns the key, not a field: it goes above the form
      const field = err instanceof CrucibleApiError && err.status !== 403 && err.status !== 401 ? fieldOf(err.param) : null;
      if (field && err instanceof CrucibleApiError) {
        setErrors({ [field]: err.error.message });
        document.getElementById(`f-${field}`)?.focus();
      } else setFormError(err);
    } finally {
      setBusy(false);
    }
  }

  const fieldProps = (name: string) => ({
    id: `f-${name}`,
    name,
    'aria-invalid': errors[name] ? true : undefined,
    'aria-describedby': errors[name] ? `e-${name}` : `h-${name}`,
  });
  const fieldError = (name: string) =>
    errors[name] ? (
      <span className="field-error" id={`e-${name}`} role="alert">
        {errors[name]}
      </span>
    ) : null;
  const processed = (files.value ?? []).filter((x) => x.status === 'processed');
  const defaults = estimate.value?.hyperparameters as Record<string, unknown> | undefined;

  return (
    <section>
      <p className="crumbs">
        <a href={href('jobs')}>Jobs</a> / new
      </p>
      <h1>New job</h1>
      <ErrorNote error={formError ?? files.error ?? models.error} />
      {!canWrite && (
        <p className="warning" role="status">
          This API key can read but not create jobs (it lacks the write scope): the form shows estimates only.
        </p>
      )}
      <form
        className="form"
        onSubmit={submit}
        noValidate
        ref={form}
        onChange={(e) => {
          const name = (e.target as unknown as HTMLInputElement).name;
          if (name === 'training_file' || name === 'model') guess();
          setChanges((c) => c + 1);
        }}
      >
        <fieldset>
          <legend>Data and model</legend>
          <label htmlFor="f-training_file">Training file</label>
          <select {...fieldProps('training_file')} required defaultValue={prefill.file} key={`file-${processed.length}`}>
            <option value="" disabled>
              {processed.length ? 'Choose a dataset' : 'No processed datasets: upload one first'}
            </option>
            {processed.map((x) => (
              <option key={x.id} value={x.id}>
                {x.filename} ({x.id}, {x.format})
              </option>
            ))}
          </select>
          {fieldError('training_file')}
          <label htmlFor="f-validation_file">Validation file (optional)</label>
          <select {...fieldProps('validation_file')} defaultValue="">
            <option value="">Split from the training file</option>
            {processed.map((x) => (
              <option key={x.id} value={x.id}>
                {x.filename} ({x.id})
              </option>
            ))}
          </select>
          {fieldError('validation_file')}
          <label htmlFor="f-model">Base model or preset</label>
          <select {...fieldProps('model')} required defaultValue={prefill.model} key={`model-${models.value?.length ?? 0}`}>
            <option value="" disabled>
              Choose a model
            </option>
            {prefill.model && !models.value?.some((m) => m.id === prefill.model) && <option value={prefill.model}>{prefill.model} (checkpoint)</option>}
            {(models.value ?? []).map((m) => (
              <option key={m.id} value={m.id}>
                {m.id} ({m.source}, {m.arch})
              </option>
            ))}
          </select>
          {fieldError('model')}
          <label htmlFor="f-suffix">Suffix (optional)</label>
          <input {...fieldProps('suffix')} maxLength={64} />
          {fieldError('suffix')}
        </fieldset>
        <fieldset>
          <legend>Method</legend>
          <label htmlFor="f-method">Method</label>
          <select
            {...fieldProps('method')}
            value={method}
            onChange={(e) => {
              methodChosen.current = true;
              setMethod(e.target.value as Method);
            }}
          >
            <option value="pretrain">pretrain: causal LM on text</option>
            <option value="mlm">mlm: masked LM on text</option>
            <option value="supervised">supervised: prompt/completion or chat</option>
            <option value="dpo">dpo: preference pairs (preferred / non-preferred answers)</option>
            <option value="reinforcement">reinforcement: prompts scored by a grader (GRPO)</option>
          </select>
          <span className="hint" id="h-method">
            Guessed from the training file’s format until you choose.
          </span>
          {fieldError('method')}
          {method === 'reinforcement' && (
            <>
              <label htmlFor="f-grader">Grader (JSON)</label>
              <textarea {...fieldProps('grader')} rows={4} defaultValue={GRADER_EXAMPLE} />
              <span className="hint" id="h-grader">
                OpenAI’s grader object: string_check, text_similarity or multi; templates read the answer and the line’s fields.
              </span>
              {fieldError('grader')}
            </>
          )}
          <label htmlFor="f-peft">Trained weights</label>
          <select {...fieldProps('peft')} defaultValue="full">
            <option value="full">all (full fine-tune)</option>
            <option value="lora">LoRA</option>
            <option value="adapter">adapters</option>
          </select>
          {fieldError('peft')}
          <label htmlFor="f-rank">LoRA rank</label>
          <input {...fieldProps('rank')} inputMode="numeric" placeholder="8" />
        </fieldset>
        <fieldset>
          <legend>Hyperparameters (empty: the default shown)</legend>
          <div className="grid">
            {HYPER.filter((h) => !h.only || h.only === method).map((h) => (
              <div key={h.name} className="field">
                <label htmlFor={`f-${h.name}`}>{h.label}</label>
                <input
                  {...fieldProps(h.name)}
                  inputMode={h.kind === 'int' ? 'numeric' : 'decimal'}
                  placeholder={defaults ? shown(defaults[h.name]) || 'auto' : 'auto'}
                />
                <span className="hint" id={`h-${h.name}`}>
                  {h.hint}
                </span>
                {fieldError(h.name)}
              </div>
            ))}
          </div>
          <label htmlFor="f-extra">More hyperparameters (JSON)</label>
          <textarea {...fieldProps('extra')} rows={3} placeholder='{"warmup_steps": 10, "optimizer": "lamb"}' />
          {fieldError('extra')}
          {Object.keys(errors)
            .filter(
              (k) =>
                k !== 'extra' &&
                !HYPER.some((h) => h.name === k) &&
                !['training_file', 'validation_file', 'model', 'suffix', 'method', 'peft', 'grader'].includes(k),
            )
            .map((k) => (
              <p key={k} className="error" role="alert">
                {k}: {errors[k]}
              </p>
            ))}
        </fieldset>
        <Estimate state={estimate} />
        {canWrite && (
          <button type="submit" disabled={busy}>
            {busy ? 'Creating…' : 'Create job'}
          </button>
        )}
      </form>
    </section>
  );
}

/** What the job would do, from the API's estimate of the form as it stands. */
function Estimate({ state }: { state: { value?: JobEstimate; error?: unknown; pending?: boolean } }) {
  const e = state.value;
  return (
    <section className="estimate" aria-labelledby="estimate-h" aria-live="polite" aria-busy={state.pending ? true : undefined} data-testid="estimate">
      <h2 id="estimate-h">Estimate</h2>
      {!e && !state.error && <p className="muted">Choose a training file and a model to see the steps, tokens and time.</p>}
      {state.error ? <ErrorNote error={state.error} /> : null}
      {e && !state.error && (
        <>
          <p>
            <strong data-testid="estimate-steps">{e.steps} steps</strong>, {e.epochs.toFixed(e.epochs < 10 ? 2 : 1)} epochs (n_epochs {e.n_epochs}),{' '}
            {e.tokens.training.toLocaleString('en')} training tokens, {e.tokens.per_step.toLocaleString('en')} per step;{' '}
            {e.estimated_seconds !== null ? `about ${seconds(e.estimated_seconds)}` : 'no time yet (no earlier job of this model measured one)'}.
          </p>
          <p className="hint">Tokenizer: {e.tokens.tokenizer}.</p>
          <details>
            <summary>Every hyperparameter the job would use</summary>
            <pre className="json" data-testid="resolved">
              {JSON.stringify(e.hyperparameters, null, 2)}
            </pre>
          </details>
          {e.steps < FEW_STEPS && (
            <p className="warning" role="alert" data-testid="few-steps">
              Only {e.steps} optimizer steps: the model will learn little. Raise Epochs or Max steps, or lower the batch size.
            </p>
          )}
        </>
      )}
    </section>
  );
}
