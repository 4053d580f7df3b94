// Gloo for Node: one group of `size` ranks, connected as a full mesh over Gloo's TCP transport
// after a rendezvous in Redis (Gloo's RedisStore under a key prefix), and the three collectives a
// data-parallel trainer needs: allreduce (sum, min or max, in place), broadcast and barrier.
// Every call is synchronous and bounded by the group's timeout: a lost peer or an unreachable
// address ends in a JavaScript Error that says which, never a hang. Allreduces can also be queued
// (enqueue, then wait): one thread of the group runs them in order while JavaScript goes on (a
// backward pass overlapping its gradients' allreduce); the synchronous calls first wait for it.
#define HIREDIS_NESTED_INCLUDE 1
#include <node_api.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/redis_store.h>
#include <gloo/transport/tcp/device.h>

namespace {

// op 0 sum, 1 min, 2 max
using ReduceFn = void (*)(void*, const void*, const void*, size_t);

template <typename T>
ReduceFn reducer(int op) {
  if (op == 1) return static_cast<ReduceFn>(&gloo::min<T>);
  if (op == 2) return static_cast<ReduceFn>(&gloo::max<T>);
  return static_cast<ReduceFn>(&gloo::sum<T>);
}

struct Queued {
  float* data;
  size_t length;
  uint64_t ticket;
};

struct Group {
  std::shared_ptr<gloo::rendezvous::Context> context;
  std::shared_ptr<gloo::transport::Device> device;
  uint32_t tag = 0;
  // queued allreduces (sums of float32), run in order by `worker`
  std::thread worker;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Queued> queue;
  bool busy = false;
  bool stop = false;
  uint64_t next = 1;
  std::map<uint64_t, std::string> done;  // ticket -> error ("" when it worked)
  std::map<uint64_t, napi_ref> held;     // the queued arrays, kept alive until waited (main thread only)

  void run() {
    for (;;) {
      Queued q;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [this] { return stop || !queue.empty(); });
        if (queue.empty()) return;
        q = queue.front();
        queue.pop_front();
        busy = true;
      }
      std::string error;
      try {
        gloo::AllreduceOptions opts(context);
        opts.setTag(tag++);
        opts.setOutput(q.data, q.length);
        opts.setReduceFunction(reducer<float>(0));
        gloo::allreduce(opts);
      } catch (const std::exception& e) {
        error = e.what();
        if (error.empty()) error = "allreduce failed";
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        done[q.ticket] = error;
        busy = false;
      }
      cv.notify_all();
    }
  }

  /** Waits until no queued allreduce is left (before a synchronous collective). */
  void drain() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return queue.empty() && !busy; });
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
      queue.clear();
    }
    cv.notify_all();
    if (worker.joinable()) worker.join();
  }
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

void finalize(napi_env, void* data, void*) {
  auto* g = static_cast<Group*>(data);
  g->shutdown();
  delete g;
}

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
  g->drain();
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
  g->drain();
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
  g->drain();
  try {
    gloo::BarrierOptions opts(g->context);
    opts.setTag(g->tag++);
    gloo::barrier(opts);
  } catch (const std::exception& e) {
    return Throw(env, e.what());
  }
  return nullptr;
}

// enqueue(group, float32Array) -> ticket: a sum allreduce in place, run by the group's thread in
// the order queued; the array is kept alive until wait(group, ticket)
napi_value Enqueue(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Group* g = argc == 2 ? groupArg(env, argv[0]) : nullptr;
  Typed t;
  if (!g) return Throw(env, "collectives.enqueue: the group is closed");
  if (!typedArg(env, argv[1], &t) || t.type != napi_float32_array) return Throw(env, "collectives.enqueue: a Float32Array expected");
  napi_ref ref;
  CHECK(napi_create_reference(env, argv[1], 1, &ref));
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(g->mu);
    ticket = g->next++;
    if (t.length == 0) g->done[ticket] = "";
    else g->queue.push_back({static_cast<float*>(t.data), t.length, ticket});
    if (!g->worker.joinable()) g->worker = std::thread([g] { g->run(); });
  }
  g->held[ticket] = ref;
  g->cv.notify_all();
  napi_value out;
  CHECK(napi_create_double(env, static_cast<double>(ticket), &out));
  return out;
}

// wait(group, ticket): blocks until that queued allreduce ran; throws its error
napi_value Wait(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Group* g = argc == 2 ? groupArg(env, argv[0]) : nullptr;
  double ticketArg = 0;
  if (!g) return Throw(env, "collectives.wait: the group is closed");
  napi_get_value_double(env, argv[1], &ticketArg);
  const auto ticket = static_cast<uint64_t>(ticketArg);
  auto held = g->held.find(ticket);
  if (held == g->held.end()) return Throw(env, "collectives.wait: no such allreduce queued");
  std::string error;
  {
    std::unique_lock<std::mutex> lock(g->mu);
    g->cv.wait(lock, [g, ticket] { return g->done.count(ticket) > 0 || g->stop; });
    auto it = g->done.find(ticket);
    error = it == g->done.end() ? "the group was closed" : it->second;
    if (it != g->done.end()) g->done.erase(it);
  }
  napi_delete_reference(env, held->second);
  g->held.erase(held);
  if (!error.empty()) return Throw(env, error.c_str());
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
    g->shutdown();
    for (auto& [ticket, ref] : g->held) napi_delete_reference(env, ref);
    g->held.clear();
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
      {"enqueue", nullptr, Enqueue, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"wait", nullptr, Wait, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
