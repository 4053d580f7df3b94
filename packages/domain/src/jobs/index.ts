// The training job, owned here: its state machine, spec (defaults applied once), names and records.
export * from './names';
export * from './records';
export * from './spec';
export * from './state-machine';
