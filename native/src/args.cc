#include "args.h"
#include <cstring>
#include "handle.h"

namespace ztw {

static const std::pair<const char*, at::ScalarType> kDtypes[] = {
    {"float32", at::kFloat}, {"float64", at::kDouble}, {"int64", at::kLong},
    {"int32", at::kInt},     {"uint8", at::kByte},     {"bool", at::kBool},
};

at::ScalarType ParseDtype(const std::string& s) {
  for (auto& [name, type] : kDtypes)
    if (s == name) return type;
  throw ArgError("unknown dtype '" + s + "' (expected float32, float64, int64, int32, uint8 or bool)");
}

std::string DtypeName(at::ScalarType t) {
  for (auto& [name, type] : kDtypes)
    if (t == type) return name;
  return c10::toString(t);
}

void Args::need(size_t i, const char* what) const {
  if (i >= info_.Length() || info_[i].IsUndefined())
    throw ArgError("argument " + std::to_string(i) + ": missing, expected " + what);
}

at::Tensor& Args::t(size_t i) const {
  need(i, "a tensor");
  at::Tensor* t = HandleTable::Of(env_).Find(info_[i], i);
  if (!t) throw ArgError("argument " + std::to_string(i) + ": tensor was disposed", "E_DISPOSED");
  return *t;
}

std::optional<at::Tensor> Args::optT(size_t i) const {
  if (!has(i)) return std::nullopt;
  return t(i);
}

double Args::d(size_t i) const {
  need(i, "a number");
  if (info_[i].IsBoolean()) return info_[i].As<Napi::Boolean>().Value() ? 1.0 : 0.0;
  if (!info_[i].IsNumber()) throw ArgError("argument " + std::to_string(i) + ": expected a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

int64_t Args::i64(size_t i) const {
  double v = d(i);
  if (v != static_cast<double>(static_cast<int64_t>(v)))
    throw ArgError("argument " + std::to_string(i) + ": expected an integer, got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

// The typed array's memory through napi_get_typedarray_info: Napi's
// ArrayBuffer() made a handle per call.
float* Args::floatsInto(size_t i, size_t n) const {
  need(i, "a Float32Array");
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (!info_[i].IsTypedArray() || napi_get_typedarray_info(env_, info_[i], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array)
    throw ArgError("argument " + std::to_string(i) + ": expected a Float32Array");
  if (length != n) throw ArgError("argument " + std::to_string(i) + ": a Float32Array of " + std::to_string(length) + " values, " + std::to_string(n) + " expected");
  return static_cast<float*>(data);
}

bool Args::b(size_t i) const {
  need(i, "a boolean");
  if (!info_[i].IsBoolean()) throw ArgError("argument " + std::to_string(i) + ": expected a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

std::string Args::str(size_t i) const {
  need(i, "a string");
  if (!info_[i].IsString()) throw ArgError("argument " + std::to_string(i) + ": expected a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> Args::ints(size_t i) const {
  need(i, "an integer list");
  if (info_[i].IsNumber()) return {i64(i)};
  if (!info_[i].IsArray()) throw ArgError("argument " + std::to_string(i) + ": expected an integer list");
  auto arr = info_[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr[k];
    if (!v.IsNumber()) throw ArgError("argument " + std::to_string(i) + ": element " + std::to_string(k) + " is not a number");
    double x = v.As<Napi::Number>().DoubleValue();
    if (x != static_cast<double>(static_cast<int64_t>(x)))
      throw ArgError("argument " + std::to_string(i) + ": element " + std::to_string(k) + " is not an integer");
    out[k] = static_cast<int64_t>(x);
  }
  return out;
}

std::optional<std::vector<int64_t>> Args::optInts(size_t i) const {
  if (!has(i)) return std::nullopt;
  return ints(i);
}

std::vector<at::Tensor> Args::tensors(size_t i) const {
  need(i, "a tensor list");
  if (!info_[i].IsArray()) throw ArgError("argument " + std::to_string(i) + ": expected a tensor list");
  auto arr = info_[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr[k];
    if (!v.IsBigInt()) throw ArgError("argument " + std::to_string(i) + ": element " + std::to_string(k) + " is not a tensor");
    at::Tensor* t = HandleTable::Of(env_).Find(v, i);
    if (!t) throw ArgError("argument " + std::to_string(i) + ": element " + std::to_string(k) + " was disposed", "E_DISPOSED");
    out.push_back(*t);
  }
  return out;
}

at::ScalarType Args::dtype(size_t i, at::ScalarType dflt) const {
  if (!has(i)) return dflt;
  return ParseDtype(str(i));
}

at::Scalar Args::scalar(size_t i) const {
  need(i, "a number");
  if (info_[i].IsBoolean()) return at::Scalar(info_[i].As<Napi::Boolean>().Value());
  double v = d(i);
  // Integral numbers become integer scalars, as Python ints do in PyTorch, so
  // that in-place updates of integer tensors keep their dtype.
  if (std::abs(v) < 9.007199254740992e15 && v == static_cast<double>(static_cast<int64_t>(v))) return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

Napi::Value Args::ret(at::Tensor t) const { return HandleTable::Of(env_).Add(env_, std::move(t)); }

Napi::Value Args::ret(const std::vector<at::Tensor>& ts) const {
  auto arr = Napi::Array::New(env_, ts.size());
  auto& table = HandleTable::Of(env_);
  for (uint32_t k = 0; k < ts.size(); k++) arr[k] = table.Add(env_, ts[k]);
  return arr;
}

Napi::Value Args::retArray(const at::Tensor& tensor) const {
  auto t = tensor.detach().contiguous();
  size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  auto buf = Napi::ArrayBuffer::New(env_, bytes);
  if (bytes) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  size_t n = static_cast<size_t>(t.numel());
  switch (t.scalar_type()) {
    case at::kFloat: return Napi::Float32Array::New(env_, n, buf, 0);
    case at::kDouble: return Napi::Float64Array::New(env_, n, buf, 0);
    case at::kLong: return Napi::BigInt64Array::New(env_, n, buf, 0);
    case at::kInt: return Napi::Int32Array::New(env_, n, buf, 0);
    case at::kByte:
    case at::kBool: return Napi::Uint8Array::New(env_, n, buf, 0);
    default: throw ArgError("toArray: unsupported dtype " + DtypeName(t.scalar_type()));
  }
}

Napi::Value Args::ret(const std::vector<int64_t>& v) const {
  auto arr = Napi::Array::New(env_, v.size());
  for (uint32_t k = 0; k < v.size(); k++) arr[k] = Napi::Number::New(env_, static_cast<double>(v[k]));
  return arr;
}

}  // namespace ztw
