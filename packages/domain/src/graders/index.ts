export * from './formula';
export * from './grade';
export * from './similarity';
export * from './templates';
