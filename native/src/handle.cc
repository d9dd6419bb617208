#include "handle.h"
#include "addon_data.h"

namespace ztw {

std::atomic<int64_t> TensorHandle::live_{0};

Napi::Function TensorHandle::Define(Napi::Env env) {
  return DefineClass(env, "TensorHandle",
                     {InstanceMethod("dispose", &TensorHandle::Dispose),
                      InstanceMethod("isDisposed", &TensorHandle::IsDisposed)});
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

TensorHandle::~TensorHandle() { Release(nullptr); }

// Garbage-collected without dispose(): release here, where an env is at hand
// to tell V8 the memory is gone.
void TensorHandle::Finalize(Napi::Env env) { Release(&env); }

static int64_t BytesOf(const at::Tensor& t) {
  return t.defined() ? static_cast<int64_t>(t.numel() * t.element_size()) : 0;
}

void TensorHandle::Reset(Napi::Env env, at::Tensor t) {
  Release(&env);
  tensor_ = std::move(t);
  if (tensor_.defined()) {
    live_++;
    reported_ = BytesOf(tensor_);
    if (reported_) Napi::MemoryManagement::AdjustExternalMemory(env, reported_);
  }
}

// Idempotent. Without an env (destructor at shutdown) the external-memory
// report is left alone.
void TensorHandle::Release(Napi::Env* env) {
  if (!tensor_.defined()) return;
  tensor_ = at::Tensor();
  live_--;
  if (env && reported_) Napi::MemoryManagement::AdjustExternalMemory(*env, -reported_);
  reported_ = 0;
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Release(&env);
  return env.Undefined();
}

Napi::Value TensorHandle::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_.defined());
}

Napi::Object TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  Napi::Object obj = AddonData::Of(env)->handleCtor.New({});
  TensorHandle::Unwrap(obj)->Reset(env, std::move(t));
  return obj;
}

bool TensorHandle::Is(Napi::Env env, const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(AddonData::Of(env)->handleCtor.Value());
}

}  // namespace ztw
