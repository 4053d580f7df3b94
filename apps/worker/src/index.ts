export { parseWorkerConfig, type WorkerConfig } from './config';
export { type RunningWorker, startWorker } from './main';
