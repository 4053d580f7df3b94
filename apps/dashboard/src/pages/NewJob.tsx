// New job: dataset, base model or preset, method and hyperparameters. The API validates; its
// messages are shown at the field they name (`param`), anything else above the form.
import { type CreateJobRequest, type Crucible, CrucibleApiError } from '@crucible/sdk';
import { type FormEvent, useState } from 'react';
import { ErrorNote } from '../components/ui';
import { collect, useLoad } from '../hooks';
import { href } from '../route';

const HYPER: { name: string; label: string; kind: 'int' | 'number'; hint: string }[] = [
  { name: 'max_steps', label: 'Max steps', kind: 'int', hint: 'Optimizer steps; overrides epochs.' },
  { name: 'n_epochs', label: 'Epochs', kind: 'int', hint: 'Passes over the data when max steps is empty.' },
  { name: 'batch_size', label: 'Batch size', kind: 'int', hint: 'Sequences per micro-batch.' },
  { name: 'block_size', label: 'Block size', kind: 'int', hint: 'Context length; default: the model’s.' },
  { name: 'learning_rate', label: 'Learning rate', kind: 'number', hint: 'Peak learning rate.' },
  { name: 'beta', label: 'DPO beta', kind: 'number', hint: 'dpo only: how far the model may move from the reference (default 0.1).' },
  { name: 'group_size', label: 'Group size', kind: 'int', hint: 'reinforcement only: answers sampled per prompt (default 8).' },
  { name: 'kl_beta', label: 'KL beta', kind: 'number', hint: 'reinforcement only: pull toward the starting model (default 0.04).' },
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

export function NewJobPage({ crucible }: { crucible: Crucible }) {
  const files = useLoad(() => collect(crucible.listFiles()), [crucible]);
  const models = useLoad(() => collect(crucible.listModels()), [crucible]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const str = (k: string) => String(f.get(k) ?? '').trim();
    const hyperparameters: Record<string, unknown> = {};
    for (const h of HYPER) {
      const v = str(h.name);
      if (v !== '') hyperparameters[h.name] = h.kind === 'int' && /^-?\d+$/.test(v) ? Number.parseInt(v, 10) : Number(v);
    }
    const extra = str('extra');
    setErrors({});
    setFormError(null);
    if (extra) {
      try {
        Object.assign(hyperparameters, JSON.parse(extra));
      } catch {
        setErrors({ extra: 'Not valid JSON: write an object such as {"warmup_steps": 10}.' });
        return;
      }
    }
    const type = str('method') as 'pretrain' | 'mlm' | 'supervised' | 'dpo' | 'reinforcement';
    const peft = str('peft');
    const inner: Record<string, unknown> = { hyperparameters };
    if (type === 'reinforcement') {
      try {
        inner.grader = JSON.parse(str('grader'));
      } catch {
        setErrors({ grader: 'Not valid JSON: write a grader object such as the example.' });
        return;
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
    setBusy(true);
    try {
      const job = await crucible.createJob(body);
      window.location.hash = href('jobs', job.id);
    } catch (err) {
      const field = err instanceof CrucibleApiError ? fieldOf(err.param) : null;
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

  return (
    <section>
      <p className="crumbs">
        <a href={href('jobs')}>Jobs</a> / new
      </p>
      <h1>New job</h1>
      <ErrorNote error={formError ?? files.error ?? models.error} />
      <form className="form" onSubmit={submit} noValidate>
        <fieldset>
          <legend>Data and model</legend>
          <label htmlFor="f-training_file">Training file</label>
          <select {...fieldProps('training_file')} required defaultValue="">
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
          <select {...fieldProps('model')} required defaultValue="">
            <option value="" disabled>
              Choose a model
            </option>
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
          <select {...fieldProps('method')} defaultValue="pretrain">
            <option value="pretrain">pretrain: causal LM on text</option>
            <option value="mlm">mlm: masked LM on text</option>
            <option value="supervised">supervised: prompt/completion or chat</option>
            <option value="dpo">dpo: preference pairs (preferred / non-preferred answers)</option>
            <option value="reinforcement">reinforcement: prompts scored by a grader (GRPO)</option>
          </select>
          {fieldError('method')}
          <label htmlFor="f-grader">Grader (reinforcement, JSON)</label>
          <textarea {...fieldProps('grader')} rows={4} defaultValue={GRADER_EXAMPLE} />
          <span className="hint" id="h-grader">
            OpenAI’s grader object: string_check, text_similarity or multi; templates read the answer and the line’s fields.
          </span>
          {fieldError('grader')}
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
          <legend>Hyperparameters (empty: the default)</legend>
          <div className="grid">
            {HYPER.map((h) => (
              <div key={h.name} className="field">
                <label htmlFor={`f-${h.name}`}>{h.label}</label>
                <input {...fieldProps(h.name)} inputMode={h.kind === 'int' ? 'numeric' : 'decimal'} />
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
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create job'}
        </button>
      </form>
    </section>
  );
}
