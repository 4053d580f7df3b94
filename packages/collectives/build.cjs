// Builds the Gloo addon where Debian's libgloo-dev is installed; never fails the install: without
// it, multi-worker jobs are refused at creation and everything else works.
// CRUCIBLE_COLLECTIVES_WITHOUT_GLOO=1 skips the build (the fresh-machine check).
const { spawnSync } = require('node:child_process');
const { existsSync, rmSync } = require('node:fs');
const path = require('node:path');

const gloo = existsSync('/usr/include/gloo/rendezvous/redis_store.h') && process.env.CRUCIBLE_COLLECTIVES_WITHOUT_GLOO !== '1';
if (!gloo) {
  rmSync(path.join(__dirname, 'build'), { recursive: true, force: true });
  console.log('@crucible/collectives: Gloo is absent (apt-get install libgloo-dev): multi-worker jobs are off');
  process.exit(0);
}
const gyp = require.resolve('node-gyp/bin/node-gyp.js', {
  paths: [path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules'), __dirname],
});
const prefix = path.join(path.dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir || (existsSync(path.join(prefix, 'include/node/node_api.h')) ? prefix : undefined);
console.log('@crucible/collectives: building with Gloo');
const r = spawnSync(process.execPath, [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])], { cwd: __dirname, stdio: 'inherit' });
if (r.status !== 0) console.log('@crucible/collectives: build failed (a C++ compiler, make and python3 are needed); multi-worker jobs are off');
process.exit(0);
