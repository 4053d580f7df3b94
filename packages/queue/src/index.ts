// @crucible/queue: BullMQ queues on Redis, dispatch of training attempts, the one owner of their
// retries (requeueAttempt), and the reconciler.
export * from './connections';
export * from './model-routes';
export * from './queues';
export * from './reconciler';
export * from './requeue';
