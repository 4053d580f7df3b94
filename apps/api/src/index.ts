export { buildApp } from './app';
export { createProjectWithKey, hashKey } from './auth';
export { type ApiConfig, parseApiConfig } from './config';
export { createDeps, type Deps } from './deps';
export { redispatchEvaluations } from './evaluations/service';
export { startServer } from './server';
