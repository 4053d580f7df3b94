// @crucible/storage: S3 access and object keys.
export * from './keys';
export * from './local-s3';
export * from './s3';
