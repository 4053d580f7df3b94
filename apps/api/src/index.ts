export { buildApp } from './app';
export { createProjectWithKey, hashKey } from './auth';
export { type ApiConfig, parseApiConfig } from './config';
export { createDeps, type Deps } from './deps';
export { redispatchEvaluations } from './evaluations/service';
export { RateLimiter } from './front-door/rate-limit';
export { isImportFile } from './models/service';
export { startServer } from './server';
