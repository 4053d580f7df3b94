// Every queue, its job payload and its retry policy, in one place (payloads carry ids only).

export const QUEUES = {
  training: 'crucible-training',
  inference: 'crucible-inference',
  evaluation: 'crucible-evaluation',
} as const;

/** One evaluation run (ids only; the record holds the options). */
export interface EvaluationPayload {
  evaluationId: string;
  projectId: string;
}

/** A training run of one job; `attempt` makes resumes distinct queue jobs. */
export interface TrainingPayload {
  jobId: string;
  projectId: string;
  attempt: number;
  /** A multi-worker job's rank (1..workers-1; absent: rank 0, which holds the job's record). */
  rank?: number;
}

/** Text generation: `n` samples of one prompt (completions, chat). */
export interface GenerationPayload {
  kind: 'generate';
  projectId: string;
  model: string;
  /** A completion's prompt; for a chat completion, the conversation in Crucible's template (the worker renders `messages` with the model's own). */
  prompt: string;
  /** A chat completion's conversation: the worker renders it with the model's chat template. */
  messages?: Array<{ role: string; content: string }>;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  stop: string[];
  /** Special tokens (by role) that end generation: end-of-text for completions, also <|im_end|> for chat. */
  stopRoles: Array<'eot' | 'im_end'>;
  seed: number;
  /** Choices to generate; choice i samples with seed + i. */
  n: number;
  /** Per-token log-probabilities with this many alternatives (0: the chosen token only); null: none. */
  logprobs: number | null;
  /** Also score the prompt's tokens (completions' echo). */
  echo: boolean;
  /** Redis channel that receives {index, text} pieces as they are generated (streaming), if any. */
  streamChannel?: string;
}

export interface EmbeddingPayload {
  kind: 'embed';
  projectId: string;
  model: string;
  inputs: string[];
  pooling: 'mean' | 'cls';
}

export interface FillMaskPayload {
  kind: 'fill_mask';
  projectId: string;
  model: string;
  inputs: string[];
  topK: number;
}

export type InferencePayload = GenerationPayload | EmbeddingPayload | FillMaskPayload;

/** One token with its log-probability (null for a prompt's first token) and alternatives. */
export interface TokenLogprobResult {
  token: string;
  bytes: number[];
  logprob: number | null;
  top: Array<{ token: string; bytes: number[]; logprob: number }>;
}

export interface GenerationChoice {
  text: string;
  finishReason: 'stop' | 'length';
  completionTokens: number;
  logprobs?: TokenLogprobResult[];
}

export interface GenerationResult {
  kind: 'generate';
  promptTokens: number;
  choices: GenerationChoice[];
  /** The prompt's tokens with their log-probabilities (echo with logprobs). */
  promptLogprobs?: TokenLogprobResult[];
}

export interface EmbeddingResult {
  kind: 'embed';
  vectors: number[][];
  tokens: number;
}

export interface FillMaskResult {
  kind: 'fill_mask';
  results: Array<Array<{ position: number; candidates: Array<{ tokenId: number; token: string; score: number }> }>>;
  tokens: number;
}

export type InferenceResult = GenerationResult | EmbeddingResult | FillMaskResult;

/** How a worker reports a problem of the request itself (answered as a 400 by the API). */
export const INFERENCE_INPUT_ERROR = 'crucible-input-error:';

/** How a worker reports that the request's model does not fit its model cache beside the models in use (a 503 model_capacity). */
export const MODEL_CAPACITY_ERROR = 'crucible-model-capacity:';

export const JOB_OPTIONS = {
  // BullMQ never retries a training entry: a run that cannot go on is queued again as a new
  // attempt with its own entry, by requeueAttempt in @crucible/queue (the one retry owner)
  training: { attempts: 1, removeOnComplete: 1000, removeOnFail: 1000 },
  inference: { attempts: 1, removeOnComplete: 100, removeOnFail: 100 },
  // an evaluation is recomputed from the start when its worker is lost (it has no checkpoints)
  evaluation: { attempts: 3, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: 1000, removeOnFail: 1000 },
} as const;

/** Redis pub/sub channel on which the API asks workers to stop a running job; scoped by the queue prefix so deployments can share a Redis. */
export function controlChannel(queuePrefix: string): string {
  return `${queuePrefix}:control`;
}
export interface ControlMessage {
  jobId: string;
  action: 'cancel' | 'pause';
}
