// @crucible/training-config: presets, defaults and config shapes of a training run. No dependencies.
export * from './defaults';
export * from './presets';
export * from './types';
