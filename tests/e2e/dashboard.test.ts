// The dashboard in a real browser (headless Chromium) against a running stack, a team's whole day:
// sign in, upload a dataset with a progress bar and check it against a base model, a field-level
// validation error, start a job from the form with its estimate, watch the loss chart gain points
// while it trains (no reload), pause and cancel it, act on a checkpoint from its row (evaluate,
// chat in the playground, download, fine-tune from here), delete, manage keys and webhooks, a
// read-only key, a revoked key signed out, the banner while the API cannot be reached, dark mode,
// phone widths and an accessibility audit, the API reference. Screenshots go to .crucible/screenshots/.
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Crucible, type FineTuningJob } from '@crucible/sdk';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, launchChromium } from '../support/browser';
import { shakespeare, untarGz } from '../support/data';
import { startPlatform, type TestPlatform } from '../support/platform';

const SHOTS = join(import.meta.dirname, '../../.crucible/screenshots');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let p: TestPlatform;
let browser: Browser;
let page: Page;
let crucible: Crucible;
let trained: FineTuningJob;
const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

describe.skipIf(!CHROMIUM)('dashboard in headless Chromium', () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    p = await startPlatform();
    crucible = new Crucible({ baseUrl: `${p.url}/v1`, apiKey: p.apiKey });
    // a small trained model for the playground and the evaluation
    const file = await crucible.uploadFile({ name: 'seed.txt', data: shakespeare(20_000) }, { purpose: 'pretrain' });
    const job = await crucible.createJob({
      model: 'gpt-nano',
      training_file: file.id,
      suffix: 'bard',
      method: {
        type: 'pretrain',
        pretrain: {
          hyperparameters: {
            max_steps: 30,
            block_size: 32,
            batch_size: 4,
            eval_interval: 10,
            checkpoint_interval: 10,
            log_interval: 1,
            tokenizer: { type: 'char' },
          },
        },
      },
    });
    trained = await crucible.waitForJob(job.id, { timeoutMs: 240_000 });
    expect(trained.status).toBe('succeeded');
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });
  afterAll(async () => {
    await browser?.close();
    await p?.close();
  });

  it('signs in with an API key kept in the session, never in the URL, from the keyboard', async () => {
    const missing: string[] = [];
    page.on('response', (r) => {
      if (r.status() === 404 && r.url().startsWith(p.url) && !r.url().includes('/v1/')) missing.push(r.url());
    });
    await page.goto(`${p.url}/dashboard/`);
    await expect.poll(() => page.evaluate<string>('document.activeElement?.id')).toBe('apiKey');
    await page.keyboard.type('ck-wrong');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'invalid API key' }).waitFor();
    await page.fill('#apiKey', p.apiKey);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    expect(page.url()).not.toContain(p.apiKey);
    expect(await page.evaluate<string>("sessionStorage.getItem('crucible.apiKey')")).toBe(p.apiKey);
    expect(await page.evaluate<number>('localStorage.length')).toBe(0);
    await page.getByRole('link', { name: trained.id }).waitFor();
    // the page's own files are all there, and its icon is inline (no request, so no favicon.ico 404)
    expect(missing).toEqual([]);
    expect(await page.locator('link[rel=icon]').getAttribute('href')).toMatch(/^data:image\/svg\+xml,/);
    await shot('jobs');
    // a missing job is a clear error, not a blank page
    await page.goto(`${p.url}/dashboard/#/jobs/ftjob-missing`);
    await page.getByRole('alert').filter({ hasText: 'job_not_found' }).waitFor();
    await page.goto(`${p.url}/dashboard/#/jobs`);
  });

  it('uploads a dataset with a progress bar and shows its report and statistics', async () => {
    await page.getByRole('link', { name: 'Datasets' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Datasets' }).waitFor();
    // a slow uplink (1 MB/s) so that progress is seen between 0 and the whole file
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
    // every value the progress bar shows, recorded in the page
    await page.evaluate(`{
      const seen = (window.progressSeen = []);
      new MutationObserver(() => {
        const bar = document.querySelector('[data-testid=upload-progress]');
        if (bar) seen.push(bar.value / bar.max);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    }`);
    const text = shakespeare(1_000_000);
    await page.setInputFiles('#upload-file', { name: 'shakespeare.txt', mimeType: 'text/plain', buffer: Buffer.from(text) });
    await page.selectOption('#upload-purpose', 'pretrain');
    await page.getByRole('button', { name: 'Upload' }).click();
    const uploaded = page.getByRole('status').filter({ hasText: 'Uploaded' });
    await uploaded.waitFor({ timeout: 60_000 });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const seen = await page.evaluate<number[]>('window.progressSeen');
    expect(seen.some((f) => f > 0.05 && f < 0.95)).toBe(true);
    const fileId = (await uploaded.getByRole('link').textContent()) as string;
    expect((await crucible.retrieveFile(fileId)).bytes).toBe(Buffer.byteLength(text));
    await uploaded.getByRole('link').click();
    await page.getByRole('heading', { name: 'Statistics' }).waitFor();
    await page
      .getByText(`${(await crucible.retrieveFile(fileId)).lines} records`, { exact: false })
      .first()
      .waitFor();
    // a file with problems shows them by line and field
    const bad = await crucible.uploadFile({ name: 'bad.jsonl', data: '{"text": "ok"}\n{"text": 5}\nnot json\n' });
    await page.goto(`${p.url}/dashboard/#/datasets/${bad.id}`);
    const problems = page.getByTestId('problems');
    await problems.waitFor();
    expect(await problems.locator('tbody tr').count()).toBe(2);
    expect(await problems.locator('tbody tr').first().textContent()).toContain('2');
    await shot('dataset-report');
  });

  it('shows the API’s validation error at its field, then starts a job whose loss chart grows live, pauses, resumes and cancels it', async () => {
    await page.goto(`${p.url}/dashboard/#/jobs/new`);
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    const files = await crucible.listFiles('pretrain').next();
    const big = (await (async () => {
      for await (const f of crucible.listFiles('pretrain')) if (f.filename === 'shakespeare.txt') return f;
    })()) as { id: string };
    expect(files.value).toBeTruthy();
    await page.selectOption('#f-training_file', big.id);
    await page.selectOption('#f-model', 'gpt-nano');
    await page.fill('#f-max_steps', '0');
    await page.getByRole('button', { name: 'Create job' }).click();
    const fieldError = page.locator('#e-max_steps');
    await fieldError.waitFor();
    expect(await fieldError.textContent()).toMatch(/max_steps must be >= 1/);
    expect(await page.getAttribute('#f-max_steps', 'aria-invalid')).toBe('true');
    expect(await page.evaluate<string>('document.activeElement?.id')).toBe('f-max_steps');
    await shot('new-job-error');

    await page.fill('#f-max_steps', '3000');
    await page.fill('#f-block_size', '32');
    await page.fill('#f-batch_size', '4');
    await page.fill('#f-eval_interval', '25');
    await page.fill('#f-log_interval', '1');
    await page.fill('#f-extra', '{"tokenizer": {"type": "char"}}');
    await page.getByRole('button', { name: 'Create job' }).click();
    await page.waitForURL(/#\/jobs\/ftjob-/);
    const jobId = decodeURIComponent(page.url().split('/').at(-1) as string);
    await page.evaluate('window.sameDocument = true'); // gone if the page reloads
    const chart = page.getByTestId('chart-Loss');
    const points = async () => Number(await chart.getAttribute('data-points'));
    await expect.poll(points, { timeout: 120_000, interval: 250 }).toBeGreaterThanOrEqual(5);
    const first = await points();
    await expect.poll(points, { timeout: 60_000, interval: 250 }).toBeGreaterThanOrEqual(first + 5);
    expect(await page.evaluate<boolean>('window.sameDocument')).toBe(true);
    for (const title of ['Learning rate', 'Gradient norm', 'Tokens per second', 'Validation token accuracy']) {
      expect(Number(await page.getByTestId(`chart-${title}`).getAttribute('data-points'))).toBeGreaterThan(0);
    }
    expect(await page.getByTestId('events').locator('li').count()).toBeGreaterThan(3);
    await shot('job-running');

    // pause keeps a checkpoint; resume continues from it, and the charts keep growing
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.locator('h1 .status', { hasText: 'paused' }).waitFor({ timeout: 60_000 });
    const paused = await points();
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(points, { timeout: 120_000, interval: 250 }).toBeGreaterThanOrEqual(paused + 3);
    expect(await page.evaluate<boolean>('window.sameDocument')).toBe(true);

    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('h1 .status', { hasText: 'cancelled' }).waitFor({ timeout: 60_000 });
    expect((await crucible.retrieveJob(jobId)).status).toBe('cancelled');
    expect(await page.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
  });

  it('streams a completion in the playground (the API’s text for the seed) and downloads the model', async () => {
    const model = trained.fine_tuned_model as string;
    await page.goto(`${p.url}/dashboard/#/models/${encodeURIComponent(model)}`);
    await page.getByRole('heading', { name: 'Playground' }).waitFor();
    await page.fill('#prompt', 'ROMEO:');
    await page.fill('#max_tokens', '40');
    await page.fill('#temperature', '0.8');
    await page.fill('#seed', '3');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Generate' }).waitFor();
    await expect.poll(() => page.getByTestId('completion').textContent(), { timeout: 60_000 }).not.toBe('');
    await page.getByRole('button', { name: 'Generate' }).and(page.locator(':not([disabled])')).waitFor({ timeout: 60_000 });
    const shown = await page.getByTestId('completion').textContent();
    const api = await crucible.createCompletion({ model, prompt: 'ROMEO:', max_tokens: 40, temperature: 0.8, top_p: 1, seed: 3 });
    expect(shown).toBe(api.choices[0]?.text);
    await shot('playground');
    // the download button hands the archive to the browser
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
    expect(download.suggestedFilename()).toMatch(/\.tar\.gz$/);
    const saved = readFileSync((await download.path()) as string);
    const direct = Buffer.from(await (await crucible.downloadModel(model)).arrayBuffer());
    // the archive is built per download (tar times differ): the same files with the same bytes
    const [got, want] = [untarGz(saved), untarGz(direct)];
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, bytes] of want) expect(got.get(name)?.equals(bytes), name).toBe(true);
  });

  it('starts an evaluation and compares models on one file', async () => {
    await page.goto(`${p.url}/dashboard/#/evaluations`);
    await page.getByRole('heading', { name: 'Evaluations' }).waitFor();
    await page.getByText('No evaluations yet').waitFor();
    await page.fill('#ev-model', 'ft:not-a-model');
    await page.selectOption('#ev-file', trained.training_file);
    await page.getByRole('button', { name: 'Evaluate' }).click();
    await page.locator('#ev-model-e').waitFor();
    await page.fill('#ev-model', trained.fine_tuned_model as string);
    await page.getByRole('button', { name: 'Evaluate' }).click();
    await page.locator('tbody .status', { hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
    await page.selectOption('#cmp-file', trained.training_file);
    const table = page.getByTestId('comparison');
    await table.waitFor();
    expect(await table.locator('tbody th').first().textContent()).toBe(trained.fine_tuned_model);
    // its screen-reader-only "best" labels stay inside the table's scrolling box: on a phone, where
    // the table scrolls, the page is no wider than the window
    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(() => page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await page.setViewportSize({ width: 1280, height: 900 });
    const cmp = await crucible.compareEvaluations(trained.training_file);
    const lossCol = cmp.columns.indexOf('loss');
    expect(await table.locator('tbody td').nth(lossCol).textContent()).toContain(Number(cmp.rows[0]?.values[lossCol]).toFixed(4));
    await shot('evaluations');
  });

  it('offers the dpo method and shows a dpo job’s reward curves', async () => {
    await page.goto(`${p.url}/dashboard/#/jobs/new`);
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    expect(await page.locator('#f-method option[value=dpo]').count()).toBe(1);
    // pairs in the seed's characters: the preferred answer repeats the word, the other one does not
    const line = (w: string) =>
      JSON.stringify({
        input: { messages: [{ role: 'user', content: w }] },
        preferred_output: [{ role: 'assistant', content: `${w} ${w}` }],
        non_preferred_output: [{ role: 'assistant', content: 'no' }],
      });
    const pairs = ['the', 'king', 'lord', 'good', 'night', 'love', 'sweet', 'heart'].map(line).join('\n');
    const file = await crucible.uploadFile({ name: 'prefs.jsonl', data: pairs });
    const job = await crucible.createJob({
      model: trained.fine_tuned_model as string,
      training_file: file.id,
      method: { type: 'dpo', dpo: { hyperparameters: { max_steps: 6, batch_size: 4, eval_interval: 3, log_interval: 1, beta: 0.5 } } },
    });
    expect((await crucible.waitForJob(job.id, { timeoutMs: 120_000 })).status).toBe('succeeded');
    await page.goto(`${p.url}/dashboard/#/jobs/${job.id}`);
    for (const chart of ['Rewards', 'Reward margin', 'Reward accuracy']) {
      await expect.poll(async () => Number(await page.getByTestId(`chart-${chart}`).getAttribute('data-points'))).toBeGreaterThan(2);
    }
    await shot('dpo-job');
  });

  it('creates a reinforcement job from the form (its grader as JSON, a bad one shown at its field) and shows its reward curves', async () => {
    // prompts in the seed's characters; the grader rewards an answer that contains the letter e
    const prompts = ['the', 'king', 'lord', 'good', 'night', 'love', 'sweet', 'heart']
      .map((w) => JSON.stringify({ messages: [{ role: 'user', content: w }], answer: 'e' }))
      .join('\n');
    const file = await crucible.uploadFile({ name: 'prompts.jsonl', data: prompts });
    await crucible.waitForFile(file.id);
    await page.goto(`${p.url}/dashboard/#/jobs/new`);
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    await page.selectOption('#f-training_file', file.id);
    await page.selectOption('#f-model', trained.fine_tuned_model as string);
    await page.selectOption('#f-method', 'reinforcement');
    await page.fill('#f-grader', JSON.stringify({ type: 'python', name: 'p', source: 'def grade(s, i): return 1' }));
    await page.getByRole('button', { name: 'Create job' }).click();
    await page.locator('#e-grader').waitFor();
    expect(await page.locator('#e-grader').textContent()).toMatch(/sandbox/);
    await page.fill(
      '#f-grader',
      JSON.stringify({ type: 'string_check', name: 'e', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'like' }),
    );
    await page.fill('#f-max_steps', '4');
    await page.fill('#f-batch_size', '2');
    await page.fill('#f-group_size', '4');
    await page.fill('#f-eval_interval', '2');
    await page.fill('#f-log_interval', '1');
    await page.fill('#f-extra', '{"max_completion_tokens": 6}');
    await page.getByRole('button', { name: 'Create job' }).click();
    await page.waitForURL(/#\/jobs\/ftjob-/);
    const id = page.url().split('/').at(-1) as string;
    expect((await crucible.waitForJob(id, { timeoutMs: 120_000 })).status).toBe('succeeded');
    await page.reload();
    for (const chart of ['Mean reward', 'KL to the starting model', 'Groups with varied rewards']) {
      await expect.poll(async () => Number(await page.getByTestId(`chart-${chart}`).getAttribute('data-points'))).toBeGreaterThan(2);
    }
    await shot('reinforcement-job');
  });

  it('checks a dataset against a base model; the job form guesses the method, shows the defaults and a live estimate', async () => {
    const model = trained.fine_tuned_model as string;
    // digits and braces: the character-level model has never seen them
    const digits = await crucible.uploadFile({
      name: 'digits.jsonl',
      data: Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `Count ${i}?`, completion: ` {${i}}` })).join('\n'),
    });
    await crucible.waitForFile(digits.id);
    await page.goto(`${p.url}/dashboard/#/datasets/${digits.id}`);
    await page.getByRole('heading', { name: 'Check against a base model' }).waitFor();
    await page.selectOption('#check-model', model);
    await page.getByRole('button', { name: 'Check', exact: true }).click();
    const unknown = page.getByTestId('unknown-characters');
    await unknown.waitFor();
    expect(await unknown.textContent()).toContain('"1" (line 2)');
    // the preview marks the answer tokens, which carry loss (here unknown: <|unk|>), and not the prompt's
    const first = page.getByTestId('preview-tokens').first();
    expect((await first.locator('.loss').allTextContents()).join('')).toBe(' <|unk|><|unk|><|unk|><|endoftext|>');
    expect((await first.locator('span:not(.loss)').allTextContents()).join('')).toMatch(/^Count <\|unk\|>\?/);
    await shot('dataset-check');

    const clean = await crucible.uploadFile({
      name: 'sft.jsonl',
      data: Array.from({ length: 20 }, (_, i) =>
        JSON.stringify({ prompt: ['the king', 'good lord', 'sweet love', 'my heart'][i % 4], completion: ' so be it' }),
      ).join('\n'),
    });
    await crucible.waitForFile(clean.id);
    await page.goto(`${p.url}/dashboard/#/datasets/${clean.id}`);
    await page.selectOption('#check-model', model);
    await page.getByRole('button', { name: 'Check', exact: true }).click();
    await page.getByText('Every character is known').waitFor();
    await page.getByRole('link', { name: `Fine-tune ${model} on this file` }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    // prefilled from the link, the method guessed from the file's format
    expect(await page.inputValue('#f-training_file')).toBe(clean.id);
    expect(await page.inputValue('#f-model')).toBe(model);
    expect(await page.inputValue('#f-method')).toBe('supervised');
    // the estimate is the API's, its defaults the fields' placeholders; 20 short records make few steps
    const est = await crucible.estimateJob({ model, training_file: clean.id, method: { type: 'supervised', supervised: { hyperparameters: {} } } });
    await expect.poll(() => page.getByTestId('estimate-steps').textContent(), { timeout: 20_000 }).toBe(`${est.steps} steps`);
    expect(est.steps).toBeLessThan(50);
    await page.getByTestId('few-steps').waitFor();
    expect(await page.getAttribute('#f-learning_rate', 'placeholder')).toBe(String(est.hyperparameters.learning_rate));
    expect(await page.getAttribute('#f-n_epochs', 'placeholder')).toBe(String(est.n_epochs));
    await shot('new-job-estimate');
    await page.fill('#f-max_steps', '80');
    await expect.poll(() => page.getByTestId('estimate-steps').textContent(), { timeout: 20_000 }).toBe('80 steps');
    expect(await page.getByTestId('few-steps').count()).toBe(0);
  });

  it('acts on a checkpoint from its row: evaluate it, chat with it, download it, fine-tune from it; reads the charts', async () => {
    await page.goto(`${p.url}/dashboard/#/jobs/${trained.id}`);
    const row = page.locator('tr[data-checkpoint="30"]');
    await row.waitFor();
    const ckpt = (await row.locator('code').textContent()) as string;
    expect(ckpt).toMatch(/:ckpt-step-30$/);
    await expect.poll(() => page.getByTestId('step-counter').textContent()).toContain('step 30 of 30');
    expect(await page.getByTestId('workers').textContent()).toBe('1'); // one worker: no ranks to list

    // charts: hovering reads the values at a step; dragging zooms to a range, and back
    const chart = page.getByTestId('chart-Loss');
    const box = (await chart.locator('svg').boundingBox()) as { x: number; y: number; width: number; height: number };
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    expect(await chart.getByTestId('readout').textContent()).toMatch(/^step \d+: train /);
    const all = Number(await chart.getAttribute('data-points'));
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await chart.getByRole('button', { name: 'Reset zoom' }).waitFor();
    expect(Number(await chart.getAttribute('data-points'))).toBeLessThan(all);
    await chart.getByRole('button', { name: 'Reset zoom' }).click();
    expect(Number(await chart.getAttribute('data-points'))).toBe(all);

    // download: the checkpoint's folder
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download step 30' }).click()]);
    expect(download.suggestedFilename()).toMatch(/ckpt-step-30\.tar\.gz$/);
    expect([...untarGz(readFileSync((await download.path()) as string)).keys()]).toContain('model.safetensors');

    // fine-tune from here: the form with the checkpoint as the base
    await page.getByRole('link', { name: 'Fine-tune from here: step 30' }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    expect(await page.inputValue('#f-model')).toBe(ckpt);

    // evaluate: the evaluation's own page, with its metrics
    await page.goto(`${p.url}/dashboard/#/jobs/${trained.id}`);
    await page.getByRole('button', { name: 'Evaluate step 30' }).click();
    await page.waitForURL(/#\/evaluations\/eval/);
    await page.locator('h1 .status', { hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
    await page.locator('[data-metric=loss]').waitFor();

    // chat in the playground: the API's own answer for the seed
    await page.goto(`${p.url}/dashboard/#/jobs/${trained.id}`);
    await page.getByRole('link', { name: 'Playground: step 30' }).click();
    await page.getByRole('heading', { name: 'Playground' }).waitFor();
    expect(await page.isChecked('input[name=mode] >> nth=0')).toBe(true); // chat
    await page.fill('#system', 'Speak as a king.');
    await page.fill('#message', 'the king');
    await page.fill('#max_tokens', '12');
    await page.fill('#temperature', '0.8');
    await page.fill('#seed', '2');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByRole('button', { name: 'New conversation' }).waitFor({ timeout: 60_000 });
    const api = await crucible.createChatCompletion({
      model: ckpt,
      messages: [
        { role: 'system', content: 'Speak as a king.' },
        { role: 'user', content: 'the king' },
      ],
      max_tokens: 12,
      temperature: 0.8,
      top_p: 1,
      seed: 2,
    });
    const turns = page.getByTestId('chat-log').locator('li');
    expect(await turns.count()).toBe(2);
    expect((await turns.nth(1).textContent())?.replace(/^Model:\s*/, '').trim()).toBe(api.choices[0]?.message.content?.trim());
    await shot('playground-chat');
  });

  it('shows a supervised evaluation with its answer metrics first and its sample outputs', async () => {
    const qa = await crucible.uploadFile({
      name: 'qa.jsonl',
      data: Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: ['the king', 'good lord'][i % 2], completion: ' so be it' })).join('\n'),
    });
    await crucible.waitForFile(qa.id);
    const ev = await crucible.createEvaluation({ model: trained.fine_tuned_model as string, file: qa.id, max_examples: 4, samples: 2, max_tokens: 8 });
    await page.goto(`${p.url}/dashboard/#/evaluations/${ev.id}`);
    await page.locator('h1 .status', { hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
    const first = await page.getByTestId('metrics').locator('tr').first().getAttribute('data-metric');
    expect(first).toBe('exact_match');
    expect(await page.getByTestId('samples').locator('tbody tr').count()).toBe(2);
    await shot('evaluation');
  });

  it('finds jobs by search and filters, and deletes a dataset after asking', async () => {
    await page.goto(`${p.url}/dashboard/#/jobs`);
    await page.getByRole('link', { name: trained.id }).waitFor();
    const rows = page.locator('tbody tr[data-job]');
    const before = await rows.count();
    expect(before).toBeGreaterThan(2);
    await page.fill('#jobs-q', trained.id);
    await expect.poll(() => rows.count()).toBe(1);
    await page.fill('#jobs-q', 'bard'); // its suffix names the model it made, and the jobs that fine-tuned that
    await expect.poll(() => rows.count()).toBeGreaterThan(1);
    await page.fill('#jobs-q', '');
    await page.selectOption('#jobs-status', 'cancelled');
    await expect.poll(() => rows.count()).toBeLessThan(before);
    for (const t of await page.locator('tbody tr[data-job] .status').allTextContents()) expect(t).toBe('cancelled');
    await page.selectOption('#jobs-status', '');
    await page.selectOption('#jobs-method', 'dpo');
    await expect.poll(() => rows.count()).toBe(1);
    await page.selectOption('#jobs-method', '');

    const doomed = await crucible.uploadFile({ name: 'doomed.txt', data: 'to be or not to be\n' });
    await crucible.waitForFile(doomed.id);
    await page.goto(`${p.url}/dashboard/#/datasets/${doomed.id}`);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('button', { name: 'Keep it' }).click();
    expect((await crucible.retrieveFile(doomed.id)).id).toBe(doomed.id);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('button', { name: 'Delete the file' }).click();
    await page.waitForURL(/#\/datasets$/);
    await expect(crucible.retrieveFile(doomed.id)).rejects.toMatchObject({ status: 404 });
  });

  it('prepares a dataset from its page (the report counts what each rule did), and deletes a model after asking', async () => {
    const lines = ['to be or not to be', 'to be or not to be', 'write to someone@example.com'].map((text) => JSON.stringify({ text }));
    const raw = await crucible.uploadFile({ name: 'raw.jsonl', data: `${lines.join('\n')}\n` }, { purpose: 'pretrain' });
    await crucible.waitForFile(raw.id);
    await page.goto(`${p.url}/dashboard/#/datasets/${raw.id}`);
    await page.getByRole('heading', { name: 'Prepare' }).waitFor();
    await page.check('input[name=scrub_pii]');
    await page.getByRole('button', { name: 'Prepare', exact: true }).click();
    await page.waitForURL((u) => !u.hash.endsWith(raw.id) && /#\/datasets\/file-/.test(u.hash));
    const report = page.getByRole('region', { name: 'Preparation report' });
    await report.waitFor({ timeout: 60_000 });
    const counts = JSON.parse((await report.textContent()) as string).counts;
    expect(counts).toMatchObject({ exact_duplicates: 1, scrub_pii: 1 });
    await page.getByRole('link', { name: raw.id }).waitFor(); // prepared from

    // a model made by a job of this walk (not the one later pages show)
    let doomed = '';
    for await (const m of crucible.listModels()) if (m.source === 'trained' && m.id !== trained.fine_tuned_model) doomed = m.id;
    expect(doomed).not.toBe('');
    await page.goto(`${p.url}/dashboard/#/models/${encodeURIComponent(doomed)}`);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByTestId('confirm-delete').waitFor();
    await page.getByRole('button', { name: 'Delete the model' }).click();
    await page.waitForURL(/#\/models$/);
    await expect(crucible.retrieveModel(doomed)).rejects.toMatchObject({ status: 404 });
  });

  it('manages keys and webhooks on the project page; a read-only key sees no create buttons, and a revoked one is signed out with the reason', async () => {
    const hits: IncomingHttpHeaders[] = [];
    const receiver = createServer((req, res) => {
      hits.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      await page.goto(`${p.url}/dashboard/#/project`);
      await page.getByTestId('limits').waitFor();
      await page.fill('#key-name', 'viewer');
      await page.uncheck('input[name=scope-write]');
      await page.getByRole('button', { name: 'Create key' }).click();
      const secret = (await page.getByTestId('new-key-secret').textContent()) as string;
      expect(secret).toMatch(/^sk-crucible-/);
      await page.locator('tr[data-key=viewer]').waitFor();

      await page.fill('#wh-name', 'ci');
      await page.fill('#wh-url', `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`);
      await page.getByRole('button', { name: 'Add endpoint' }).click();
      await page.locator('tr[data-webhook=ci]').getByRole('button', { name: 'Deliveries and test' }).click();
      await page.getByRole('button', { name: 'Send test' }).click();
      await expect.poll(() => page.getByTestId('webhook-test').textContent()).toContain('answered 204');
      expect(hits[0]?.['webhook-signature']).toMatch(/^v1,/);
      await shot('project');

      // the read-only key in its own tab
      const viewer = await browser.newContext();
      await viewer.addInitScript(`sessionStorage.setItem('crucible.apiKey', ${JSON.stringify(secret)})`);
      const tab = await viewer.newPage();
      await tab.goto(`${p.url}/dashboard/#/jobs`);
      await tab.locator('.who', { hasText: 'read' }).waitFor();
      await tab.getByRole('link', { name: trained.id }).waitFor();
      expect(await tab.getByRole('link', { name: 'New job' }).count()).toBe(0);
      await tab.goto(`${p.url}/dashboard/#/datasets`);
      await tab.getByRole('heading', { name: 'Datasets' }).waitFor();
      expect(await tab.locator('#upload-file').count()).toBe(0);
      await tab.goto(`${p.url}/dashboard/#/models/${encodeURIComponent(trained.fine_tuned_model as string)}`);
      await tab.getByText('This API key is read-only').waitFor();
      expect(await tab.getByRole('button', { name: 'Generate' }).count()).toBe(0);
      await tab.goto(`${p.url}/dashboard/#/jobs`);
      await tab.getByRole('link', { name: trained.id }).waitFor();

      // revoked from the project page: the viewer's next request signs it out, saying why
      page.once('dialog', (d) => d.accept());
      await page.getByRole('button', { name: 'Revoke viewer' }).click();
      await page.locator('tr[data-key=viewer] .status', { hasText: 'revoked' }).waitFor();
      const out = tab.getByTestId('signed-out');
      await out.waitFor({ timeout: 15_000 });
      expect(await out.textContent()).toMatch(/revoked at/);
      expect(await tab.evaluate<string | null>("sessionStorage.getItem('crucible.apiKey')")).toBeNull();
      await viewer.close();
    } finally {
      receiver.close();
    }
  });

  it('shows a banner and marks a live job stale while the API cannot be reached, then recovers', async () => {
    const file = (await crucible.listFiles('pretrain').next()).value as { id: string };
    const job = await crucible.createJob({
      model: 'gpt-nano',
      training_file: trained.training_file ?? file.id,
      method: {
        type: 'pretrain',
        // steps enough that the job still runs when the API comes back (5,000 ran out on a fast
        // worker), and a checkpoint every 10 steps, whose event reaches the page while it cannot refresh
        pretrain: {
          hyperparameters: {
            max_steps: 1_000_000,
            checkpoint_interval: 10,
            block_size: 32,
            batch_size: 4,
            eval_interval: 0,
            log_interval: 1,
            tokenizer: { type: 'char' },
          },
        },
      },
    });
    try {
      await page.goto(`${p.url}/dashboard/#/jobs/${job.id}`);
      await expect.poll(() => page.getByTestId('step-counter').textContent(), { timeout: 120_000 }).toContain('left');
      // every new request fails as if the server were down (the stream already open keeps going)
      await page.route(`${p.url}/**`, (r) => r.abort('connectionrefused'));
      await page.getByTestId('offline').waitFor({ timeout: 15_000 });
      await page.getByTestId('stale').waitFor();
      expect(await page.getByRole('button', { name: 'Pause' }).isDisabled()).toBe(true);
      // the stream still open brings a checkpoint the page cannot refresh for: it loses the stream,
      // and must reopen it when the API is back although the new one never ends
      await page.getByTestId('stale').filter({ hasText: 'the live stream is lost' }).waitFor({ timeout: 60_000 });
      await shot('api-unreachable');
      await page.unroute(`${p.url}/**`);
      await page.getByTestId('offline').waitFor({ state: 'detached', timeout: 15_000 });
      await page.getByRole('button', { name: 'Pause' }).and(page.locator(':not([disabled])')).waitFor();
    } finally {
      await crucible.cancelJob(job.id).catch(() => {});
    }
  });

  it('reaches the skip link with the first Tab, and offers no playground on a preset', async () => {
    await page.goto(`${p.url}/dashboard/#/jobs`);
    await page.reload();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string | undefined>('document.activeElement?.textContent')).toBe('Skip to content');
    await page.goto(`${p.url}/dashboard/#/models/gpt-nano`);
    await page.getByRole('heading', { name: 'gpt-nano' }).waitFor();
    await page.getByText('A preset is a shape with untrained weights').waitFor();
    expect(await page.getByRole('heading', { name: 'Playground' }).count()).toBe(0);
  });

  it('fits 375 px phones to 1440 px desktops, passes an accessibility audit in light and dark mode, and serves the API reference at /docs', async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    await page.goto(`${p.url}/dashboard/#/jobs/${trained.id}`);
    await page.getByTestId('chart-Loss').waitFor();
    // no page scrolls sideways
    // (when not, the widest element is named, to find the culprit)
    const fits = (on: Page) =>
      on.evaluate<boolean | string>(`document.documentElement.scrollWidth <= window.innerWidth || [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth && !e.closest('.table-wrap'))
        .map((e) => e.tagName + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)).slice(-3).join(' ')`);
    const visit = async (on: Page, route: string) => {
      await on.goto(`${p.url}/dashboard/#/${route}`);
      await on.locator('main h1').waitFor();
      await on.waitForLoadState('networkidle');
    };
    const routes = [
      'jobs',
      `jobs/${trained.id}`,
      'jobs/new',
      'datasets',
      `datasets/${trained.training_file}`,
      'models',
      `models/${trained.fine_tuned_model}`,
      'evaluations',
      `evaluations/${(await crucible.listEvaluations().next()).value?.id}`,
      'project',
    ];
    expect(await fits(page)).toBe(true);
    await shot('job-phone');
    // the job list on a phone keeps each job's status and result in view (the other columns wait for a wider window)
    await visit(page, 'jobs');
    for (const col of ['Status', 'Result']) {
      const cell = page.getByRole('columnheader', { name: col, exact: true });
      const b = (await cell.boundingBox()) as { x: number; width: number };
      expect(`${col} ${b.x + b.width <= 375}`).toBe(`${col} true`);
    }
    await shot('jobs-phone');
    for (const route of routes) {
      await visit(page, route);
      expect(`${route}: ${await fits(page)}`).toBe(`${route}: true`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${p.url}/dashboard/#/jobs/${trained.id}`);
    await expect.poll(() => page.getByTestId('chart-Loss').getAttribute('data-points').then(Number)).toBeGreaterThan(30);
    await shot('job');
    // no serious or critical accessibility violations (axe-core) on any page, at desktop and tablet widths
    const axe = async (on: Page) => {
      await on.addScriptTag({ path: AXE });
      const found = await on.evaluate<{ id: string; impact: string; nodes: { target: string[] }[] }[]>(
        "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => ({ target: n.target })) })))",
      );
      return found; // every violation, minor ones included
    };
    const signedOut = await browser.newContext({ bypassCSP: true }); // axe is injected as an inline script
    const signIn = await signedOut.newPage();
    await signIn.goto(`${p.url}/dashboard/`);
    await signIn.locator('#apiKey').waitFor();
    expect(`sign-in: ${JSON.stringify(await axe(signIn))}`).toBe('sign-in: []');
    await signedOut.close();
    const audit = await browser.newContext({ bypassCSP: true, viewport: { width: 1440, height: 900 } });
    await audit.addInitScript(`sessionStorage.setItem('crucible.apiKey', ${JSON.stringify(p.apiKey)})`);
    const a11y = await audit.newPage();
    for (const [width, theme] of [
      [1440, 'light'],
      [768, 'light'],
      [1440, 'dark'],
    ] as const) {
      await a11y.setViewportSize({ width, height: 900 });
      await a11y.emulateMedia({ colorScheme: theme });
      for (const route of routes) {
        await visit(a11y, route);
        // the page follows the system's preference as it changes
        await expect.poll(() => a11y.evaluate<string | undefined>('document.documentElement.dataset.theme')).toBe(theme);
        const found = await axe(a11y);
        expect(`${width} ${theme} ${route}: ${JSON.stringify(found)}`).toBe(`${width} ${theme} ${route}: []`);
        expect(`${width} ${route}: ${await fits(a11y)}`).toBe(`${width} ${route}: true`);
      }
    }
    // the toggle overrides the system's choice, and is kept
    await a11y.getByRole('button', { name: 'Dark mode' }).click();
    expect(await a11y.evaluate<string | undefined>('document.documentElement.dataset.theme')).toBe('light');
    await a11y.reload();
    await a11y.locator('main h1').waitFor();
    expect(await a11y.evaluate<string | undefined>('document.documentElement.dataset.theme')).toBe('light');
    await audit.close();

    // the static files: a strict CSP, hashed assets cached, nothing outside the build served
    const index = await fetch(`${p.url}/dashboard/`);
    expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");
    const asset = /src="\/dashboard\/(assets\/[^"]+\.js)"/.exec(await index.text())?.[1];
    expect((await fetch(`${p.url}/dashboard/${asset}`)).headers.get('cache-control')).toContain('immutable');
    for (const path of ['..%2f..%2fpackage.json', '..%2F..%2F..%2Fpackage.json', '%2e%2e/%2e%2e/package.json']) {
      const r = await fetch(`${p.url}/dashboard/${path}`);
      expect(`${path} ${r.status}`).toBe(`${path} 404`);
    }
    expect((await fetch(`${p.url}/`, { redirect: 'manual' })).headers.get('location')).toBe('/dashboard/');

    await page.goto(`${p.url}/docs`);
    await page.getByText('Crucible API').first().waitFor();
    await page.getByText('/fine_tuning/jobs').first().waitFor();
  });
});
