// Builds the addon when OpenBLAS is present; never fails the install (the kernels are optional).
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
const nodedir = process.env.npm_config_nodedir || (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
const r = spawnSync(process.execPath, [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])], { cwd: __dirname, stdio: 'inherit' });
if (r.status !== 0) console.log('@crucible/native-kernels: build failed; the trainer will use the wasm backend');
process.exit(0);
