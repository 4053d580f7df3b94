// @crucible/domain: the schemas, error codes and job catalog that the API and the worker share.

export * from './chat-template';
export * from './config';
export * from './datasets';
export * from './errors';
export * from './front-door/filenames';
export * from './front-door/json-depth';
export * from './front-door/text';
export * from './front-door/utf8';
export * from './graders';
export * from './ids';
export * from './job-catalog';
export * from './jobs';
export * from './limits';
export * from './records';
export * from './schemas/common';
export * from './schemas/completions';
export * from './schemas/evaluations';
export * from './schemas/files';
export * from './schemas/graders';
export * from './schemas/jobs';
export * from './schemas/models';
export * from './schemas/projects';
export * from './schemas/webhooks';
export * from './unavailable';
