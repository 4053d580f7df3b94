// Records of the other resources as the repositories return them.
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
  /** The trainer's ModelConfig. */
  config: Record<string, unknown> & { blockSize: number };
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
