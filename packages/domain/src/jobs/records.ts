// The job wing's records as the repository returns them: typed domain objects, not database rows.
import type { Precision } from '@crucible/training-config';
import type { Static } from '@sinclair/typebox';
import type { EventLevelSchema, FailureError } from '../schemas/common';
import type { PreparationRules } from '../schemas/files';
import type { MethodType, MetricsEventData, RewardMetrics } from '../schemas/jobs';
import type { ResolvedHyperparameters } from './spec';
import type { JobStatus } from './state-machine';

export type JobFailure = Static<typeof FailureError>;

/** The spec as stored: resolved at creation, then finished by the worker with the data's numbers. */
export type StoredHyperparameters = ResolvedHyperparameters & { vocab_size?: number };

export interface JobRecord {
  id: string;
  projectId: string;
  /** The preset or trained model the job starts from. */
  model: string;
  method: MethodType;
  hyperparameters: StoredHyperparameters;
  trainingFileId: string;
  validationFileId: string | null;
  status: JobStatus;
  seed: number;
  suffix: string | null;
  metadata: Record<string, string> | null;
  error: JobFailure | null;
  /** The model this job produces (set when it succeeds). */
  fineTunedModel: string | null;
  trainedTokens: number | null;
  backend: string | null;
  /** As requested (null: the worker's CPU chooses); once running, the precision the job trains in. */
  precision: Precision | null;
  /** Data preparation rules applied to the training file before training (resolved), if any. */
  preparation: PreparationRules | null;
  /** The prepared training file the job trains on (made by its first attempt). */
  preparedFileId: string | null;
  /** Workers the job trains on at once (data parallelism, one rank each). */
  workers: number;
  /** Which worker holds each rank of the current attempt, once its gang assembled. */
  ranks: JobRank[] | null;
  /** Runs of the job so far: each resume or requeue is a new attempt (and a new queue entry). */
  attempt: number;
  /** The worker run that holds the job (validating_files, running), if any. */
  leaseId: string | null;
  heartbeatAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Seconds spent running so far, summed over attempts (pauses and waits in the queue excluded). */
  runningSeconds: number;
}

/** One rank of a multi-worker job: the worker that holds it and the address the others reach it at. */
export interface JobRank {
  rank: number;
  worker: string;
  host: string;
}

export type EventLevel = Static<typeof EventLevelSchema>;
export type EventType = 'message' | 'metrics';

/** An event's type and data: a `metrics` event's data has its declared shape (MetricsEventData). */
export type EventBody = { type: 'metrics'; data: MetricsEventData } | { type: 'message'; data: Record<string, unknown> | null };

export type JobEventRecord = {
  id: string;
  /** Insertion order (the SSE stream's cursor). */
  seq: bigint;
  jobId: string;
  level: EventLevel;
  message: string;
  createdAt: Date;
} & EventBody;

export type NewJobEvent = { level?: EventLevel } & ({ type?: 'message'; data?: Record<string, unknown> } | { type: 'metrics'; data: MetricsEventData });

export interface CheckpointRecord {
  id: string;
  jobId: string;
  step: number;
  storageKey: string;
  metrics: Record<string, number | null>;
  /** The checkpoint with the lowest validation loss so far (kept by retention). */
  best: boolean;
  createdAt: Date;
}

export interface MetricRecord {
  step: number;
  trainLoss: number | null;
  validLoss: number | null;
  validAcc: number | null;
  lr: number | null;
  gradNorm: number | null;
  tokensPerSec: number | null;
  /** dpo jobs: the step's rewards (train and validation). */
  rewards: RewardMetrics | null;
}
