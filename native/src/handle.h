// One JS object owns one at::Tensor. dispose() releases it at once; the GC
// finaliser releases it otherwise. Native memory is reported to V8 so that
// large tensors drive garbage collection.
#pragma once
#include <napi.h>
#include <torch/torch.h>
#include <atomic>

namespace ztw {

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, at::Tensor t);
  static bool Is(Napi::Env env, const Napi::Value& v);
  static int64_t Live() { return live_.load(); }

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;
  void Finalize(Napi::Env env) override;

  bool defined() const { return tensor_.defined(); }
  at::Tensor& tensor() { return tensor_; }
  void Reset(Napi::Env env, at::Tensor t);

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  void Release(Napi::Env* env);

  at::Tensor tensor_;
  int64_t reported_ = 0;
  static std::atomic<int64_t> live_;
};

}  // namespace ztw
