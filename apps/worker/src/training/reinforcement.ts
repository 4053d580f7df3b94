// A reinforcement job's training data: its prompts rendered with the model's chat template, the
// grader that scores each sampled answer against the prompt's line, how an answer ends, and the
// starting model kept frozen as the reference of the KL penalty (and the cosine metric's
// embeddings).

import { encodePrompts, type ReinforcementPrompt, splitPairs } from '@crucible/datasets';
import { CHAT_STOP, compileGrader, JobInputError, type ReinforcementSettings } from '@crucible/domain';
import { chatTemplateOf, meanPooledEmbeddings, type Tokenizer, type TrainData, Transformer } from '@crucible/trainer';
import type { LoadedWeights } from '../model-loader';

export interface PromptFiles {
  train: { text: string };
  val?: { text: string };
}

/**
 * The run's data, and its size in prompts. `base` is the job's starting weights: the reference
 * is built from them (taking their values over) when the KL penalty or the cosine metric needs it
 * (`keep` owns it).
 */
export function reinforcementData(
  files: PromptFiles,
  tokenizer: Tokenizer,
  settings: ReinforcementSettings,
  split: { ratio: number; seed: number | null },
  base: LoadedWeights,
  keep: (m: Transformer) => Transformer,
): { data: TrainData; trainSize: number; examples: number } {
  const encode = (text: string, param: string): ReinforcementPrompt[] => {
    try {
      return encodePrompts(text, tokenizer);
    } catch (err) {
      throw new JobInputError('invalid_file', `${param}: ${(err as Error).message}`, param);
    }
  };
  const all = encode(files.train.text, 'training_file');
  if (!files.val && all.length < 2) {
    throw new JobInputError(
      'invalid_file',
      `the training file holds ${all.length} prompt(s); holding some out for validation needs at least 2 (or give a validation_file)`,
      'training_file',
    );
  }
  const sets = files.val ? { train: all, val: encode(files.val.text, 'validation_file') } : splitPairs(all, split.ratio, split.seed);
  const grader = compileGrader(settings.grader);
  const needsReference = settings.kl_beta > 0 || grader.needsEmbeddings;
  const { peft: _adapters, ...frozen } = base.config;
  // the weights are taken into the reference tensor by tensor (never held twice)
  const reference = needsReference ? keep(Transformer.create({ ...frozen, dropout: 0 }, 0, base.weights, true)) : undefined;
  const embed = grader.needsEmbeddings && reference ? (texts: string[]) => meanPooledEmbeddings(reference, tokenizer, texts) : undefined;
  const { stopTokens, stopText } = answerEnd(tokenizer, base.eosIds ?? []);
  const empty = new Int32Array(0);
  return {
    data: {
      train: empty,
      val: empty,
      reinforcement: {
        train: sets.train.map((p) => p.prompt),
        val: sets.val.map((p) => p.prompt),
        grade: (set, index, answer) => grader.grade(answer, (set === 'train' ? sets.train : sets.val)[index]?.item, embed),
        ...(settings.kl_beta > 0 && reference ? { reference } : {}),
        stopTokens,
        ...(stopText ? { stopText } : {}),
      },
    },
    trainSize: sets.train.length,
    examples: sets.train.length,
  };
}

/**
 * How a sampled answer ends: the end-of-turn and end-of-text tokens and the model's own
 * end-of-sequence ids; with Crucible's template and a vocabulary that has no <|im_end|> token,
 * the text <|im_end|>.
 */
function answerEnd(tokenizer: Tokenizer, eosIds: number[]): { stopTokens: number[]; stopText?: string } {
  const specials = (['eot', 'im_end'] as const).map((r) => tokenizer.special(r)).filter((id): id is number => id !== undefined);
  const stopTokens = [...new Set([...specials, ...eosIds])];
  const crucibleText = chatTemplateOf(tokenizer).crucible && tokenizer.special('im_end') === undefined;
  return crucibleText ? { stopTokens, stopText: CHAT_STOP } : { stopTokens };
}
