// The worker thread's entry: worker threads do not inherit the tsx loader of the API's process,
// so this registers it, then loads the TypeScript module that does the work.
import { register } from 'tsx/esm/api';

register();
await import('./file-work-thread.ts');
