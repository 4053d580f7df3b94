// Loads @prisma/schema-engine-wasm under plain Node: the package is built for bundlers (it
// imports its .wasm file as an ES module), so instantiate the module by hand with its JS glue.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

type Engine = typeof import('@prisma/schema-engine-wasm');

export async function loadSchemaEngine(): Promise<Engine['SchemaEngine']> {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('@prisma/schema-engine-wasm')); // resolves schema_engine.js
  const glue = (await import(join(dir, 'schema_engine_bg.js'))) as Record<string, unknown> & {
    __wbg_set_wasm: (w: unknown) => void;
  };
  // biome-ignore lint/suspicious/noExplicitAny: WebAssembly typings come with lib.dom, which this project does not load
  const WA = (globalThis as any).WebAssembly;
  const module = await WA.compile(readFileSync(join(dir, 'schema_engine_bg.wasm')));
  const instance = await WA.instantiate(module, { './schema_engine_bg.js': glue });
  glue.__wbg_set_wasm(instance.exports);
  (instance.exports.__wbindgen_start as () => void)();
  return glue.SchemaEngine as Engine['SchemaEngine'];
}
