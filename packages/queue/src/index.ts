// @crucible/queue: BullMQ queues on Redis, dispatch of training attempts, and the reconciler.
export * from './connections';
export * from './queues';
export * from './reconciler';
