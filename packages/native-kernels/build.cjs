// Builds the addon when OpenBLAS headers are present; never fails the install (without the addon the
// trainer falls back to the wasm backend and says how to get this one).
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const header = ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/cblas.h', '/usr/include/openblas/cblas.h'].find((h) => existsSync(h));
if (!header) {
  console.log('@crucible/native-kernels: no cblas.h (apt-get install libopenblas-dev); the trainer will use the wasm backend');
  process.exit(0);
}
const path = require('node:path');
// node-gyp ships with npm; offline it needs the local Node headers (npm passes npm_config_nodedir)
const gyp = require.resolve('node-gyp/bin/node-gyp.js', {
  paths: [path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules'), __dirname],
});
// the headers of the running Node (/usr/include/node for Debian's, /usr/local/include/node in the
// official images), so that node-gyp does not try to download them
const prefix = path.join(path.dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir || (existsSync(path.join(prefix, 'include/node/node_api.h')) ? prefix : undefined);
// oneDNN (libdnnl-dev) adds bf16 matrix products (the optional mixed-precision mode)
const dnnl = ['/usr/include/dnnl.h', '/usr/include/oneapi/dnnl/dnnl.h'].some((h) => existsSync(h));
const r = spawnSync(process.execPath, [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : []), '--', `-Dwith_dnnl=${dnnl ? 1 : 0}`], {
  cwd: __dirname,
  stdio: 'inherit',
});
if (r.status !== 0) console.log('@crucible/native-kernels: build failed (a C compiler, make and python3 are needed); the trainer will use the wasm backend');
process.exit(0);
