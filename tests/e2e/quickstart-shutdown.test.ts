// `npm run quickstart` stopped by SIGTERM while its job trains: the worker stops first, so the job
// saves a checkpoint at the step it reached and is queued again to resume from there, and the
// process exits 0 after the API and its local services. Runs the real script in its own process
// on its own database, queue prefix and local S3 folder.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_DATABASE_URL, eventually } from '../support/platform';

const root = resolve(import.meta.dirname, '../..');
type Client = InstanceType<typeof pg.Client>;

describe('the quickstart stopped by SIGTERM mid-job', () => {
  const tag = `qs_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const dbUrl = new URL(ADMIN_DATABASE_URL);
  dbUrl.pathname = `/crucible_test_${tag}`;
  const state = mkdtempSync(join(tmpdir(), 'crucible-quickstart-'));
  let child: ChildProcess | undefined;
  let db: Client | undefined;

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await db?.end().catch(() => {});
    rmSync(state, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "crucible_test_${tag}" WITH (FORCE)`);
    await admin.end();
  });

  it('checkpoints the running job at the step it reached, queues it again, and exits 0', async () => {
    let output = '';
    child = spawn(process.execPath, ['--import', 'tsx', join(root, 'scripts/quickstart.ts'), '--steps', '5000', '--chars', '50000'], {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: dbUrl.toString(),
        QUEUE_PREFIX: `crucible-test-${tag}`,
        CRUCIBLE_STATE_DIR: state,
        PORT: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d) => {
      output += d;
    });
    child.stderr?.on('data', (d) => {
      output += d;
    });
    // 'close' (not 'exit'): every byte the process wrote has been read, so a failure shows all of it
    const exited = new Promise<string>((res) => child?.once('close', (code, signal) => res(signal ? `killed by ${signal}` : `exit code ${code}`)));

    // training is under way: metrics past step 25 (the quickstart logs every 25 steps)
    const trained = await eventually(async () => {
      if (child?.exitCode !== null) throw new Error(`the quickstart exited early:\n${output}`);
      if (!db) {
        const c = new pg.Client({ connectionString: dbUrl.toString() });
        if (
          !(await c.connect().then(
            () => true,
            () => false,
          ))
        )
          return undefined;
        db = c;
      }
      const r = await db.query('SELECT max(step) AS step FROM job_metrics').catch(() => ({ rows: [] as Array<{ step: number | null }> }));
      const step = Number(r.rows[0]?.step ?? 0);
      return step >= 50 ? step : undefined;
    }, 240_000);

    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((res) => setTimeout(() => res('timeout'), 120_000))]);
    expect(code, output).toBe('exit code 0');
    expect(output).toContain('SIGTERM: stopping the worker');

    const c = db as Client;
    const [job] = (await c.query<{ id: string; status: string }>('SELECT id, status FROM jobs')).rows;
    expect(job?.status).toBe('queued'); // for the next start to resume
    const ck = await c.query<{ step: number }>('SELECT max(step) AS step FROM job_checkpoints WHERE job_id = $1', [job?.id]);
    // the quickstart checkpoints every 100 steps: a checkpoint at or past the step reached is the shutdown's own
    expect(Number(ck.rows[0]?.step)).toBeGreaterThanOrEqual(trained);
    const ev = await c.query<{ data: { reason?: string } }>("SELECT data FROM job_events WHERE job_id = $1 AND data->>'reason' = 'worker_shutdown'", [job?.id]);
    expect(ev.rows.length).toBe(1);
  });
});
