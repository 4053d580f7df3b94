// A worker thread of file-work-pool.ts: runs file tasks with a storage client of its own and
// answers each with its result, or with the error's name, message and code.
import { parentPort, workerData } from 'node:worker_threads';
import { Storage } from '@crucible/storage';
import { type FileTask, runFileTask } from './file-work';

const storage = new Storage(workerData.s3);

parentPort?.on('message', async (msg: { id: number; task: FileTask }) => {
  try {
    parentPort?.postMessage({ id: msg.id, result: await runFileTask(storage, msg.task) });
  } catch (err) {
    const e = err as Error & { code?: string };
    parentPort?.postMessage({ id: msg.id, error: { name: e.name, message: e.message, code: e.code } });
  }
});
