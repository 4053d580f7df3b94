export { parseWorkerConfig, type WorkerConfig } from './config';
export { startWorker } from './main';
