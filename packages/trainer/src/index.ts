// @crucible/trainer: transformer language-model training on TensorFlow.js, with no platform deps.
export * from './backend';
export * from './checkpoint';
export * from './config';
export * from './data';
export * from './model';
export * from './ops';
export * from './optim';
export * from './rng';
export * from './safetensors';
export * from './sample';
export * from './schedule';
export * from './tokenizer';
export * from './train';
