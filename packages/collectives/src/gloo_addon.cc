// Gloo for Node: one group of `size` ranks, connected as a full mesh over Gloo's TCP transport
// after a rendezvous in Redis (Gloo's RedisStore under a key prefix), and the three collectives a
// data-parallel trainer needs: allreduce (sum, min or max, in place), broadcast and barrier.
// Every call is synchronous and bounded by the group's timeout: a lost peer or an unreachable
// address ends in a JavaScript Error that says which, never a hang.
#define HIREDIS_NESTED_INCLUDE 1
#include <node_api.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/redis_store.h>
#include <gloo/transport/tcp/device.h>

namespace {

struct Group {
  std::shared_ptr<gloo::rendezvous::Context> context;
  std::shared_ptr<gloo::transport::Device> device;
  uint32_t tag = 0;
};

#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error(env, nullptr, "collectives: bad arguments");  \
      return nullptr;                                                \
    }                                                                \
  } while (0)

std::string stringArg(napi_env env, napi_value v) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &n) != napi_ok) return "";
  std::string s(n, '\0');
  napi_get_value_string_utf8(env, v, s.data(), n + 1, &n);
  return s;
}

napi_value prop(napi_env env, napi_value obj, const char* name) {
  napi_value v;
  napi_get_named_property(env, obj, name, &v);
  return v;
}

int intProp(napi_env env, napi_value obj, const char* name) {
  int32_t x = 0;
  napi_get_value_int32(env, prop(env, obj, name), &x);
  return x;
}

void finalize(napi_env, void* data, void*) { delete static_cast<Group*>(data); }

Group* groupArg(napi_env env, napi_value v) {
  void* data = nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) return nullptr;
  auto* g = static_cast<Group*>(data);
  return g->context ? g : nullptr;
}

struct Typed {
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type = napi_float32_array;
};

bool typedArg(napi_env env, napi_value v, Typed* out) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_value buffer;
  size_t offset;
  return napi_get_typedarray_info(env, v, &out->type, &out->length, &out->data, &buffer, &offset) == napi_ok &&
         (out->type == napi_float32_array || out->type == napi_float64_array);
}

// connect({ rank, size, redisHost, redisPort, prefix, host, timeoutMs }) -> group
napi_value Connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 1) {
    napi_throw_type_error(env, nullptr, "collectives.connect: options expected");
    return nullptr;
  }
  const int rank = intProp(env, argv[0], "rank");
  const int size = intProp(env, argv[0], "size");
  const int redisPort = intProp(env, argv[0], "redisPort");
  const int timeoutMs = intProp(env, argv[0], "timeoutMs");
  const std::string redisHost = stringArg(env, prop(env, argv[0], "redisHost"));
  const std::string prefix = stringArg(env, prop(env, argv[0], "prefix"));
  const std::string host = stringArg(env, prop(env, argv[0], "host"));
  auto* g = new Group();
  std::string stage = "device";
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = host;
    g->device = gloo::transport::tcp::CreateDevice(attr);
    stage = "rendezvous";
    gloo::rendezvous::RedisStore redis(redisHost, redisPort);
    gloo::rendezvous::PrefixStore store(prefix, redis);
    stage = "connect";
    g->context = std::make_shared<gloo::rendezvous::Context>(rank, size);
    g->context->setTimeout(std::chrono::milliseconds(timeoutMs));
    g->context->connectFullMesh(store, g->device);
  } catch (const std::exception& e) {
    delete g;
    napi_value msg, code, err;
    napi_create_string_utf8(env, e.what(), NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, stage.c_str(), NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &err);
    napi_throw(env, err);
    return nullptr;
  }
  napi_value out;
  CHECK(napi_create_external(env, g, finalize, nullptr, &out));
  return out;
}

napi_value Throw(napi_env env, const char* what) {
  napi_throw_error(env, nullptr, what);
  return nullptr;
}

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

template <typename T>
ReduceFn reducer(int op) {
  if (op == 1) return static_cast<ReduceFn>(&gloo::min<T>);
  if (op == 2) return static_cast<ReduceFn>(&gloo::max<T>);
  return static_cast<ReduceFn>(&gloo::sum<T>);
}

// allreduce(group, typedArray, op) with op 0 sum, 1 min, 2 max; in place
napi_value Allreduce(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Group* g = argc == 3 ? groupArg(env, argv[0]) : nullptr;
  Typed t;
  int32_t op = 0;
  if (!g) return Throw(env, "collectives.allreduce: the group is closed");
  if (!typedArg(env, argv[1], &t)) return Throw(env, "collectives.allreduce: a Float32Array or Float64Array expected");
  napi_get_value_int32(env, argv[2], &op);
  if (t.length == 0) return nullptr;
  try {
    gloo::AllreduceOptions opts(g->context);
    opts.setTag(g->tag++);
    if (t.type == napi_float32_array) {
      opts.setOutput(static_cast<float*>(t.data), t.length);
      opts.setReduceFunction(reducer<float>(op));
    } else {
      opts.setOutput(static_cast<double*>(t.data), t.length);
      opts.setReduceFunction(reducer<double>(op));
    }
    gloo::allreduce(opts);
  } catch (const std::exception& e) {
    return Throw(env, e.what());
  }
  return nullptr;
}

// broadcast(group, typedArray, root); in place
napi_value Broadcast(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Group* g = argc == 3 ? groupArg(env, argv[0]) : nullptr;
  Typed t;
  int32_t root = 0;
  if (!g) return Throw(env, "collectives.broadcast: the group is closed");
  if (!typedArg(env, argv[1], &t)) return Throw(env, "collectives.broadcast: a Float32Array or Float64Array expected");
  napi_get_value_int32(env, argv[2], &root);
  if (t.length == 0) return nullptr;
  try {
    gloo::BroadcastOptions opts(g->context);
    opts.setTag(g->tag++);
    opts.setRoot(root);
    if (t.type == napi_float32_array) opts.setOutput(static_cast<float*>(t.data), t.length);
    else opts.setOutput(static_cast<double*>(t.data), t.length);
    gloo::broadcast(opts);
  } catch (const std::exception& e) {
    return Throw(env, e.what());
  }
  return nullptr;
}

napi_value Barrier(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Group* g = argc == 1 ? groupArg(env, argv[0]) : nullptr;
  if (!g) return Throw(env, "collectives.barrier: the group is closed");
  try {
    gloo::BarrierOptions opts(g->context);
    opts.setTag(g->tag++);
    gloo::barrier(opts);
  } catch (const std::exception& e) {
    return Throw(env, e.what());
  }
  return nullptr;
}

// close(group): drops the connections now (the peers' next call fails at once)
napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  void* data = nullptr;
  if (argc == 1 && napi_get_value_external(env, argv[0], &data) == napi_ok && data) {
    auto* g = static_cast<Group*>(data);
    g->context.reset();
    g->device.reset();
  }
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"connect", nullptr, Connect, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"allreduce", nullptr, Allreduce, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"broadcast", nullptr, Broadcast, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"barrier", nullptr, Barrier, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
