// Every queue, its job payload and its retry policy, in one place (payloads carry ids only).

export const QUEUES = {
  training: 'crucible-training',
  inference: 'crucible-inference',
} as const;

/** A training run of one job; `attempt` makes resumes distinct queue jobs. */
export interface TrainingPayload {
  jobId: string;
  projectId: string;
  attempt: number;
}

export interface InferencePayload {
  projectId: string;
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  stop: string[];
  seed: number;
  /** Redis channel that receives text pieces as they are generated (streaming), if any. */
  streamChannel?: string;
}

export interface InferenceResult {
  text: string;
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
}

export const JOB_OPTIONS = {
  // A training run is resumable from its checkpoints: a run that stopped on a transient error
  // (after retrying in place) is retried; errors of the job itself are UnrecoverableError.
  training: { attempts: 5, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: 1000, removeOnFail: 1000 },
  inference: { attempts: 1, removeOnComplete: 100, removeOnFail: 100 },
} as const;

/** Redis pub/sub channel on which the API asks workers to stop a running job; scoped by the queue prefix so deployments can share a Redis. */
export function controlChannel(queuePrefix: string): string {
  return `${queuePrefix}:control`;
}
export interface ControlMessage {
  jobId: string;
  action: 'cancel' | 'pause';
}
