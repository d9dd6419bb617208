// Module entry: exports every op of the table through one guard.
#include <dlfcn.h>
#include <cstdlib>
#include <sstream>
#include "addon_data.h"
#include "allocator.h"
#include "handle.h"
#include "op.h"

namespace ztw {

// "[2,3] float32" for every live tensor argument, so an error names the shapes.
static std::string DescribeArgs(const Napi::CallbackInfo& info) {
  std::ostringstream out;
  bool first = true;
  auto describe = [&](const Napi::Value& v) {
    if (!v.IsBigInt()) return;
    at::Tensor* t = HandleTable::Of(info.Env()).Find(v, 0);
    if (!first) out << ", ";
    first = false;
    if (!t) { out << "<disposed>"; return; }
    out << t->sizes() << " " << DtypeName(t->scalar_type());
  };
  for (size_t i = 0; i < info.Length(); i++) {
    if (info[i].IsArray()) {  // tensor lists (cat, stack)
      auto arr = info[i].As<Napi::Array>();
      for (uint32_t k = 0; k < arr.Length(); k++) describe(arr.Get(k));
    } else {
      describe(info[i]);
    }
  }
  return out.str();
}

static Napi::Error MakeError(Napi::Env env, const std::string& op, const std::string& code, const std::string& detail,
                             const std::string& shapes) {
  std::string msg = "ztw." + op + ": " + detail;
  if (!shapes.empty()) msg += " (inputs: " + shapes + ")";
  auto* data = AddonData::Of(env);
  Napi::Object err;
  if (!data->errorClass.IsEmpty()) {
    err = data->errorClass.New({Napi::String::New(env, msg)});
  } else {
    err = Napi::Error::New(env, msg).Value();
  }
  err.Set("op", op);
  err.Set("code", code);
  err.Set("shapes", shapes);
  return Napi::Error(env, err);
}

// The one guard: every native entry runs inside it.
static Napi::Value Dispatch(const Napi::CallbackInfo& info) {
  auto* entry = static_cast<OpEntry*>(info.Data());
  Napi::Env env = info.Env();
  std::string code, detail;
  try {
    return entry->fn(Args(info));
  } catch (const Napi::Error&) {
    throw;
  } catch (const ArgError& e) {
    code = e.code;
    detail = e.what();
  } catch (const c10::Error& e) {
    code = "E_TORCH";
    detail = e.what_without_backtrace();
  } catch (const std::runtime_error& e) {
    // libtorch also refuses with plain std::runtime_error in places (1.13's
    // infer_size behind view/reshape: "shape '[4, 2]' is invalid ...").
    code = "E_TORCH";
    detail = e.what();
  } catch (const std::exception& e) {
    code = "E_NATIVE";
    detail = e.what();
  } catch (...) {
    code = "E_NATIVE";
    detail = "unknown native exception";
  }
  // Only the first line of libtorch's message: the rest is a C++ trace.
  auto nl = detail.find('\n');
  if (code == "E_TORCH" && nl != std::string::npos) detail = detail.substr(0, nl);
  throw MakeError(env, entry->name, code, detail, DescribeArgs(info));
}

static Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  AddonData::Of(info.Env())->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// OpenBLAS (Debian's libtorch multiplies matrices through it) keeps its own
// pthread pool beside libtorch's OpenMP one, and its idle workers spin on
// sched_yield after every product. The early-exit runtime's small classifier
// products left them spinning through the next convolutions: 530,000
// sched_yield calls, ~100 ms of system time per batch of 128 on ResNet-56,
// and the backbone 40% slower. One BLAS thread: the heads' products are tiny,
// training speed was unchanged (bench:backbones), and libtorch's threads keep
// the cores. OPENBLAS_NUM_THREADS, when set, still wins.
static void SingleThreadedBlas() {
  if (std::getenv("OPENBLAS_NUM_THREADS")) return;
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCachingAllocator();
  SingleThreadedBlas();
  auto* data = new AddonData();
  env.SetInstanceData(data);
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  for (auto& entry : OpTable()) exports.Set(entry.name, Napi::Function::New(env, Dispatch, entry.name, &entry));
  return exports;
}

}  // namespace ztw

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return ztw::Init(env, exports); }
NODE_API_MODULE(ztw_native, InitModule)
