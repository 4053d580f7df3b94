// Builds the addon with the C compiler alone (Crucible's own matrix product), adding OpenBLAS and
// oneDNN as optional accelerators where their headers exist. Never fails the install: without a
// compiler the trainer falls back to the wasm backend and says how to get this one.
// CRUCIBLE_NATIVE_WITHOUT=openblas,dnnl builds as if those headers were absent (the fresh-machine check).
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const without = new Set((process.env.CRUCIBLE_NATIVE_WITHOUT ?? '').split(',').map((s) => s.trim()));
const present = (name, headers) => !without.has(name) && headers.some((h) => existsSync(h));
const openblas = present('openblas', ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/cblas.h', '/usr/include/openblas/cblas.h']);
// oneDNN (libdnnl-dev) also adds bf16 matrix products (the optional mixed-precision mode)
const dnnl = present('dnnl', ['/usr/include/dnnl.h', '/usr/include/oneapi/dnnl/dnnl.h']);

// node-gyp ships with npm; offline it needs the local Node headers (npm passes npm_config_nodedir)
const gyp = require.resolve('node-gyp/bin/node-gyp.js', {
  paths: [path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules'), __dirname],
});
// the headers of the running Node (/usr/include/node for Debian's, /usr/local/include/node in the
// official images), so that node-gyp does not try to download them
const prefix = path.join(path.dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir || (existsSync(path.join(prefix, 'include/node/node_api.h')) ? prefix : undefined);
console.log(
  `@crucible/native-kernels: building with Crucible's matrix product${openblas ? ', OpenBLAS' : ''}${dnnl ? ', oneDNN' : ''}` +
    (openblas && dnnl ? '' : ` (optional: apt-get install ${[openblas ? '' : 'libopenblas-dev', dnnl ? '' : 'libdnnl-dev'].filter(Boolean).join(' ')})`),
);
const r = spawnSync(
  process.execPath,
  [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : []), '--', `-Dwith_dnnl=${dnnl ? 1 : 0}`, `-Dwith_openblas=${openblas ? 1 : 0}`],
  { cwd: __dirname, stdio: 'inherit' },
);
if (r.status !== 0) console.log('@crucible/native-kernels: build failed (a C compiler, make and python3 are needed); the trainer will use the wasm backend');
process.exit(0);
