import { readFileSync } from 'node:fs';
import { defaultTrainConfig, initBackend, modelConfig, sample, Trainer, Transformer, trainTokenizer } from '@crucible/trainer';

await initBackend('auto');
const text = readFileSync('data/tinyshakespeare.txt', 'utf8').slice(0, 40000);
const tok = trainTokenizer(text, { type: 'char' });
const ids = Int32Array.from(tok.encode(text));
const mc = modelConfig('gpt-nano', tok.vocabSize, { blockSize: 32 });
const base = Transformer.create(mc, 1);
const split = Math.floor(ids.length * 0.9);
const t0 = new Trainer(
  base,
  tok,
  defaultTrainConfig(mc, {
    maxSteps: Number(process.argv[5] ?? 30),
    batchSize: 8,
    evalInterval: 0,
    evalBatches: 1,
    schedule: { kind: 'cosine', lr: 3e-3, minLr: 3e-4, warmupSteps: 3, decaySteps: Number(process.argv[5] ?? 30) },
  }),
  { train: ids.subarray(0, split), val: ids.subarray(split) },
);
await t0.run();
const PAIRS = [
  ['Who comes here?', ' The king, my lord.'],
  ['What say you?', ' Nothing, good sir.'],
  ['Where is he?', ' Gone to the tower.'],
  ['Shall we go?', ' Ay, let us away.'],
];
const eot = tok.special('eot')!;
const toks: number[] = [];
const w: number[] = [];
for (let i = 0; i < 48; i++) {
  const [p, c] = PAIRS[i % 4]!;
  if (i) {
    toks.push(eot);
    w.push(0);
  }
  for (const id of tok.encode(p)) {
    toks.push(id);
    w.push(0);
  }
  for (const id of tok.encode(c)) {
    toks.push(id);
    w.push(1);
  }
  toks.push(eot);
  w.push(1);
}
const mode = process.argv[2] ?? 'lora';
const lr = Number(process.argv[3] ?? 2e-3);
const steps = Number(process.argv[4] ?? 150);
const cfg = {
  ...mc,
  ...(mode === 'lora'
    ? { peft: { type: 'lora' as const, rank: 8, alpha: 16, dropout: 0, targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] as any } }
    : {}),
};
const m = Transformer.create(cfg, 2, base.weights());
const T = Int32Array.from(toks);
const W = Float32Array.from(w);
const n = Math.floor(T.length * 0.9);
const tr = new Trainer(
  m,
  tok,
  defaultTrainConfig(cfg, {
    maxSteps: steps,
    batchSize: 8,
    evalInterval: 50,
    evalBatches: 2,
    schedule: { kind: 'cosine', lr, minLr: lr / 10, warmupSteps: 15, decaySteps: steps },
  }),
  { train: T.subarray(0, n), val: T.subarray(n), trainWeights: W.subarray(0, n), valWeights: W.subarray(n) },
);
tr.baseModel = 'b';
await tr.run({ onEval: (e) => console.log(`step ${e.step} val ${e.loss.toFixed(3)} acc ${(e.accuracy * 100).toFixed(1)}`) });
for (const [p] of PAIRS) console.log(JSON.stringify((await sample(m, tok, p, { maxNewTokens: 24, temperature: 0 })).text));
