// Creates a project and an API key for it, and prints the key (shown once).
//   npx tsx apps/api/scripts/create-key.ts [project-name]
import { createStore } from '@crucible/db';
import { ConfigError } from '@crucible/domain';
import { createProjectWithKey } from '../src/auth';
import { parseApiConfig } from '../src/config';

try {
  const cfg = parseApiConfig(process.env);
  const store = createStore(cfg.databaseUrl);
  const { projectId, secret } = await createProjectWithKey(store, process.argv[2] ?? 'default');
  console.log(`project ${projectId}\napi key ${secret}`);
  await store.close();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}
