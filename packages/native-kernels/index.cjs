// The addon when it was built, else null (the trainer then keeps the wasm kernels).
let native = null;
try {
  native = require('./build/Release/crucible_native.node');
} catch {
  native = null;
}
module.exports = { native };
