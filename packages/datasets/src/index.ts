// @crucible/datasets: streaming validation with a report, the preparation pipeline (cleaning,
// exact and near-duplicate removal, personal-data scrubbing) and dataset statistics.
export * from './clean';
export * from './lines';
export * from './minhash';
export * from './pii';
export * from './prepare';
export * from './tokens';
export * from './validate';
