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
  // A training job is resumable from its checkpoints; a crashed worker's job is retried.
  training: { attempts: 3, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: 1000, removeOnFail: 1000 },
  inference: { attempts: 1, removeOnComplete: 100, removeOnFail: 100 },
} as const;

/** Redis pub/sub channel on which the API asks workers to stop a running job. */
export const CONTROL_CHANNEL = 'crucible:control';
export interface ControlMessage {
  jobId: string;
  action: 'cancel' | 'pause';
}

export const JOB_STATUSES = ['validating_files', 'queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];
