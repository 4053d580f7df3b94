// @crucible/datasets: streaming validation with a report, the preparation pipeline (cleaning,
// exact and near-duplicate removal, personal-data scrubbing), dataset statistics, and stored files
// read and prepared as streams (one prepareFile() for the API and the worker).
export * from './clean';
export * from './lines';
export * from './minhash';
export * from './pii';
export * from './prepare';
export * from './stored/hash-counter';
export * from './stored/lines';
export * from './stored/prepare-file';
export * from './tokens';
export * from './validate';
