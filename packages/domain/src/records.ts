// Records of the other resources as the repositories return them.
import type { Architecture, PeftConfig } from '@crucible/training-config';
import type { EventLevel, JobFailure } from './jobs/records';
import type { EvaluationMetrics, EvaluationOptions, EvaluationSample, EvaluationStatus } from './schemas/evaluations';
import type { FileFormat, StoredPreparation, ValidationReport } from './schemas/files';

/**
 * `uploading`: reserved before its object is written (never shown); `pending`: stored, being
 * validated (or prepared); `processed`: usable; `error`: validation found problems (see report).
 */
export type FileState = 'uploading' | 'pending' | 'processed' | 'error';

export interface FileRecord {
  id: string;
  projectId: string;
  filename: string;
  purpose: string;
  bytes: number;
  sha256: string;
  format: FileFormat;
  lines: number;
  storageKey: string;
  state: FileState;
  /** What validation found; null until validated. */
  report: ValidationReport | null;
  /** For a prepared file: its rules, and its report once made. */
  preparation: StoredPreparation | null;
  sourceFileId: string | null;
  processedAt: Date | null;
  createdAt: Date;
}

/** A file record as created (its state, report and times are the repository's). */
export type NewFile = Omit<FileRecord, 'state' | 'createdAt' | 'report' | 'preparation' | 'sourceFileId' | 'processedAt'> & {
  preparation?: StoredPreparation | null;
  sourceFileId?: string | null;
};

/** What validation (or preparation) settles on a pending file. */
export interface FileOutcome {
  state: 'processed' | 'error';
  format: FileFormat;
  lines: number;
  report: ValidationReport;
  preparation?: StoredPreparation;
  /** A prepared file's object is written during processing: its digest and size. */
  sha256?: string;
  bytes?: number;
}

export interface ModelRecord {
  id: string;
  projectId: string;
  jobId: string | null;
  baseModel: string;
  arch: Architecture;
  /** The trainer's ModelConfig (of the stored weights: a LoRA model's are merged). */
  config: Record<string, unknown> & { blockSize: number };
  /** trained by a job of the project, or imported through /v1/models. */
  source: 'trained' | 'imported';
  /** The LoRA or adapter config it was trained with; null when every weight was trained. */
  peft: PeftConfig | null;
  /** Its model.safetensors (the folder's other files sit beside it). */
  storageKey: string;
  createdAt: Date;
}

/** `operator` (creating projects, granting `operator`) is the server operator's: ordinary keys hold at most `admin`. */
export const KEY_SCOPES = ['read', 'write', 'admin', 'operator'] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

export interface ApiKeyRecord {
  id: string;
  projectId: string;
  name: string;
  prefix: string;
  scopes: KeyScope[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface ProjectRecord {
  id: string;
  name: string;
  createdAt: Date;
  /** Overrides of the server's default limits (snake_case fields of LIMIT_FIELDS). */
  limits: Record<string, number> | null;
}

/** One page of a cursor-paginated list, newest first. */
export interface RecordPage<T> {
  items: T[];
  hasMore: boolean;
}

export interface EvaluationRecord {
  id: string;
  projectId: string;
  model: string;
  fileId: string;
  status: EvaluationStatus;
  options: EvaluationOptions;
  metrics: EvaluationMetrics | null;
  samples: EvaluationSample[] | null;
  progress: number;
  error: JobFailure | null;
  metadata: Record<string, string> | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface EvaluationEventRecord {
  id: string;
  seq: bigint;
  level: EventLevel;
  message: string;
  data: Record<string, unknown> | null;
  createdAt: Date;
}
