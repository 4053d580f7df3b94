// The dashboard in a real browser (headless Chromium) against a running stack: sign in, upload a
// dataset with a progress bar, a field-level validation error, start a job from the form, watch the
// loss chart gain points while it trains (no reload), cancel it, a completion in the playground,
// an evaluation and the comparison, the API reference. Screenshots go to .crucible/screenshots/.
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
        pretrain: { hyperparameters: { max_steps: 30, block_size: 32, batch_size: 4, eval_interval: 10, log_interval: 1, tokenizer: { type: 'char' } } },
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
    for (const title of ['Learning rate', 'Gradient norm', 'Tokens per second']) {
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

  it('fits phone and tablet windows, passes an accessibility audit, and serves the API reference at /docs', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${p.url}/dashboard/#/jobs/${trained.id}`);
    await page.getByTestId('chart-Loss').waitFor();
    // no page scrolls sideways
    const fits = (on: Page) => on.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');
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
    ];
    expect(await fits(page)).toBe(true);
    await shot('job-phone');
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
      return found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    };
    const signedOut = await browser.newContext({ bypassCSP: true }); // axe is injected as an inline script
    const signIn = await signedOut.newPage();
    await signIn.goto(`${p.url}/dashboard/`);
    await signIn.locator('#apiKey').waitFor();
    expect(`sign-in: ${JSON.stringify(await axe(signIn))}`).toBe('sign-in: []');
    await signedOut.close();
    const audit = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
    await audit.addInitScript(`sessionStorage.setItem('crucible.apiKey', ${JSON.stringify(p.apiKey)})`);
    const a11y = await audit.newPage();
    for (const width of [1280, 768]) {
      await a11y.setViewportSize({ width, height: 900 });
      for (const route of routes) {
        await visit(a11y, route);
        const serious = await axe(a11y);
        expect(`${width} ${route}: ${JSON.stringify(serious)}`).toBe(`${width} ${route}: []`);
        expect(`${width} ${route}: ${await fits(a11y)}`).toBe(`${width} ${route}: true`);
      }
    }
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
