// The crucible-train CLI end to end in child processes: train with checkpoints, resume, sample.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint } from './checkpoint';

const cli = join(import.meta.dirname, '../bin/crucible-train.mjs');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, TFJS_BACKEND: 'wasm' } });

describe('crucible-train', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crucible-cli-'));
  const data = join(dir, 'input.txt');
  writeFileSync(data, readFileSync(join(import.meta.dirname, '../../../data/tinyshakespeare.txt'), 'utf8').slice(0, 5000));
  const out = join(dir, 'ckpt');
  const small = ['--preset', 'gpt-nano', '--block-size', '16', '--batch-size', '2', '--eval-iters', '1', '--log-interval', '1'];

  it('trains, logging step, loss, lr, grad norm and ms/iter, and writes checkpoints', () => {
    const r = run('--data', data, '--tokenizer', 'char', '--max-iters', '4', '--eval-interval', '2', '--checkpoint-interval', '2', '--out', out, ...small);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step 4: loss \d+\.\d+, lr \S+, grad norm \d+\.\d+, \d+ ms\/iter, \d+ tok\/s/);
    expect(r.stdout).toMatch(/eval step 2: val loss/);
    expect(r.stdout).toMatch(/checkpoint step 2 ->/);
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(true);
    expect(decodeCheckpoint(readFileSync(join(out, 'ckpt.safetensors'))).state?.step).toBe(4);
  });

  it('refuses to resume past the end of the schedule without --extend-schedule, saying how', () => {
    const r = run('--out', out, '--resume', '--max-iters', '6');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /goes past the end of this run's cosine schedule, which reaches min_lr .* at step 4: every added step would run at min_lr\. Pass --extend-schedule/,
    );
  });

  it('resumes from the checkpoint with an extended schedule and continues counting steps', () => {
    const r = run('--out', out, '--resume', '--max-iters', '6', '--extend-schedule');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/resumed from .* at step 4/);
    expect(r.stdout).toMatch(/schedule extended: cosine decay now ends at step 6 \(was 4\)/);
    expect(r.stdout).not.toMatch(/step 1: loss/);
    // step 5 of a cosine decay ending at 6 runs above min_lr (the old schedule had ended)
    const lr5 = Number(/step 5: loss \S+, lr (\S+),/.exec(r.stdout)?.[1]);
    const lr6 = Number(/step 6: loss \S+, lr (\S+),/.exec(r.stdout)?.[1]);
    expect(lr5).toBeGreaterThan(lr6);
    expect(r.stdout).toMatch(/step 6: loss/);
  });

  it('samples from the checkpoint', () => {
    const r = run('sample', '--checkpoint', out, '--prompt', 'ROMEO:', '--max-new-tokens', '12', '--seed', '3');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.startsWith('ROMEO:')).toBe(true);
    expect(r.stdout.trimEnd().length).toBeGreaterThan('ROMEO:'.length);
  });

  it('rejects an unknown option, naming the known ones', () => {
    const r = run('--lr-typo', '1');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown option --lr-typo \(known: --preset/);
  });
});
