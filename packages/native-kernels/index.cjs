// The addon when it was built, else null (the trainer then falls back to the wasm backend).
// CRUCIBLE_NO_NATIVE=1 makes it behave as if it were not built; CRUCIBLE_NATIVE_ADDON=path loads
// another build of it (the fresh-machine test builds one without OpenBLAS and oneDNN).
let native = null;
if (process.env.CRUCIBLE_NO_NATIVE !== '1') {
  try {
    native = require(process.env.CRUCIBLE_NATIVE_ADDON || './build/Release/crucible_native.node');
  } catch {
    native = null;
  }
}
module.exports = { native };
