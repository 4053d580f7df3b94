// Records of the other resources as the repositories return them.
import type { PeftConfig } from '@crucible/training-config';
import type { FileFormat } from './schemas/files';

/** `uploading`: reserved before its object is written (never shown); `processed`: usable. */
export type FileState = 'uploading' | 'processed';

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
  createdAt: Date;
}

export interface ModelRecord {
  id: string;
  projectId: string;
  jobId: string | null;
  baseModel: string;
  arch: 'gpt' | 'bert';
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

export interface ApiKeyRecord {
  id: string;
  projectId: string;
}

/** One page of a cursor-paginated list, newest first. */
export interface RecordPage<T> {
  items: T[];
  hasMore: boolean;
}
