// A store on a database of its own for repository-level tests: the migrations applied, one project
// with a key and one committed training file to hang jobs on (createJob). `drop()` closes it and removes the
// database.
import { createStore, deployMigrations, ensureDatabase, type Store } from '@crucible/db';
import type { JobRecord } from '@crucible/domain';
import pg from 'pg';
import { ADMIN_DATABASE_URL } from './platform';

export interface TestStore {
  store: Store;
  /** The database's URL (for rows written as an older version wrote them). */
  url: string;
  projectId: string;
  fileId: string;
  /** A queued pretrain job of gpt-nano on the file. */
  createJob(id: string): Promise<JobRecord>;
  drop(): Promise<void>;
}

export async function testStore(tag: string): Promise<TestStore> {
  const name = `crucible_${tag}_${process.pid}`;
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  await ensureDatabase(url.toString());
  await deployMigrations(url.toString(), () => {});
  const store = createStore(url.toString());
  const projectId = `proj-${tag}`;
  const fileId = `file-${tag}`;
  await store.projects.createWithKey({
    projectId,
    name: tag,
    key: { keyId: `key-${tag}`, keyHash: `h-${tag}-${process.pid}`, keyPrefix: 'sk', name: 'default', scopes: ['read', 'write', 'admin'] },
  });
  await store.files.reserve(
    { id: fileId, projectId, filename: 'a.txt', purpose: 'fine-tune', bytes: 1, sha256: '', format: 'text', lines: 1, storageKey: 'k' },
    Number.POSITIVE_INFINITY,
  );
  await store.files.commit(projectId, fileId, { sha256: 'x', bytes: 1 });
  return {
    store,
    url: url.toString(),
    projectId,
    fileId,
    createJob: (id) =>
      store.jobs.create({
        id,
        projectId,
        model: 'gpt-nano',
        method: 'pretrain',
        hyperparameters: {} as never,
        trainingFileId: fileId,
        validationFileId: null,
        seed: 1,
        suffix: null,
        metadata: null,
      }),
    async drop() {
      await store.close();
      const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}
