// @crucible/sdk: a typed client for the Crucible API, generated from openapi.json, with helpers.
//   const crucible = new Crucible({ baseUrl: 'http://127.0.0.1:8080/v1', apiKey });
//   const file = await crucible.uploadFile({ name: 'data.txt', data: text }, { purpose: 'pretrain' });
//   const job = await crucible.createJob({ model: 'gpt-nano', training_file: file.id });
//   await crucible.waitForJob(job.id, { onProgress: (p) => console.log(p.step, p.trainLoss) });
// Node-only helpers (files from paths, downloads to files) are in '@crucible/sdk/node'.
export * from './client.js';
export * from './errors.js';
export type { components, operations, paths, webhooks } from './schema.js';
export { sseData } from './sse.js';
export type { FilePurpose, UploadData, UploadInput, UploadOptions, UploadProgress } from './upload.js';
