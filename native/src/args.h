// Argument conversion for native entries. Every conversion failure throws
// ArgError, which the entry guard turns into a typed JS error.
#pragma once
#include <napi.h>
#include <torch/torch.h>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ztw {

struct ArgError : std::runtime_error {
  std::string code;
  ArgError(const std::string& msg, std::string c = "E_ARG") : std::runtime_error(msg), code(std::move(c)) {}
};

at::ScalarType ParseDtype(const std::string& s);
std::string DtypeName(at::ScalarType t);

class Args {
 public:
  explicit Args(const Napi::CallbackInfo& info) : info_(info), env_(info.Env()) {}
  Napi::Env env() const { return env_; }
  size_t size() const { return info_.Length(); }
  bool has(size_t i) const { return i < info_.Length() && !info_[i].IsUndefined() && !info_[i].IsNull(); }
  bool isNumber(size_t i) const { return i < info_.Length() && info_[i].IsNumber(); }
  bool isArray(size_t i) const { return i < info_.Length() && info_[i].IsArray(); }
  Napi::Value raw(size_t i) const { return info_[i]; }

  at::Tensor& t(size_t i) const;                  // a live tensor handle
  std::optional<at::Tensor> optT(size_t i) const;  // undefined/null -> nullopt
  double d(size_t i) const;
  int64_t i64(size_t i) const;
  bool b(size_t i) const;
  std::string str(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;            // number[] (a single number is accepted as [n])
  std::optional<std::vector<int64_t>> optInts(size_t i) const;
  std::vector<at::Tensor> tensors(size_t i) const;      // an array of tensor ids
  at::ScalarType dtype(size_t i, at::ScalarType dflt = at::kFloat) const;
  at::Scalar scalar(size_t i) const;                   // number or boolean
  float* floatsInto(size_t i, size_t n) const;          // a Float32Array of exactly n values, to write into

  Napi::Value ret(at::Tensor t) const;
  Napi::Value ret(const std::vector<at::Tensor>& ts) const;
  Napi::Value ret(double v) const { return Napi::Number::New(env_, v); }
  Napi::Value retBool(bool v) const { return Napi::Boolean::New(env_, v); }
  Napi::Value ret(const std::vector<int64_t>& v) const;
  Napi::Value retArray(const at::Tensor& t) const;  // a fresh typed array of t's values and dtype (bool as Uint8Array)
  Napi::Value undefined() const { return env_.Undefined(); }

 private:
  void need(size_t i, const char* what) const;
  const Napi::CallbackInfo& info_;
  Napi::Env env_;
};

}  // namespace ztw
