// @crucible/trainer: transformer language-model training on TensorFlow.js, with no platform deps.

// tokenizers and safetensors live in @crucible/model-files (no TensorFlow.js); re-exported for callers of the trainer
export * from '@crucible/model-files';
export * from './backend';
export * from './checkpoint';
export * from './config';
export * from './continuous-batching';
export * from './data';
export * from './data-parallel';
export * from './early-stopping';
export * from './encoder-tasks';
export * from './evaluate';
export * from './grpo';
export * from './kv-cache';
export * from './model';
export * from './ops';
export * from './optim';
export * from './packing';
export * from './preference';
export * from './rng';
export * from './sample';
export * from './schedule';
export * from './train';
