#include "handle.h"
#include "addon_data.h"
#include "args.h"
#include "op.h"

namespace ztw {

std::atomic<int64_t> HandleTable::live_{0};

HandleTable& HandleTable::Of(Napi::Env env) { return AddonData::Of(env)->handles; }

static int64_t BytesOf(const at::Tensor& t) { return static_cast<int64_t>(t.numel() * t.element_size()); }

// Native memory is reported to V8 so that large tensors no scope owns still
// drive the collections that run the TypeScript backstop.
Napi::Value HandleTable::Add(Napi::Env env, at::Tensor t) {
  if (!t.defined()) throw ArgError("an op returned no tensor", "E_NATIVE");
  uint32_t index;
  if (free_.empty()) {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back().index = index;
  } else {
    index = free_.back();
    free_.pop_back();
  }
  Slot& s = slots_[index];
  s.tensor = std::move(t);
  s.reported = BytesOf(s.tensor);
  if (s.reported) Napi::MemoryManagement::AdjustExternalMemory(env, s.reported);
  live_++;
  uint64_t id = (static_cast<uint64_t>(s.generation) << 32) | index;
  return Napi::BigInt::New(env, id);
}

HandleTable::Slot* HandleTable::Lookup(const Napi::Value& v) {
  bool lossless = false;
  uint64_t id = v.As<Napi::BigInt>().Uint64Value(&lossless);
  uint64_t index = id & 0xffffffffu;
  if (!lossless || index >= slots_.size()) return nullptr;
  Slot& s = slots_[index];
  return s.generation == (id >> 32) ? &s : nullptr;
}

at::Tensor* HandleTable::Find(const Napi::Value& v, size_t argIndex) {
  if (!v.IsBigInt()) throw ArgError("argument " + std::to_string(argIndex) + ": expected a tensor");
  Slot* s = Lookup(v);
  return s ? &s->tensor : nullptr;
}

void HandleTable::Release(Napi::Env env, const Napi::Value& v) {
  if (!v.IsBigInt()) throw ArgError("argument 0: expected a tensor");
  Slot* s = Lookup(v);
  if (!s) return;
  s->tensor = at::Tensor();
  if (s->reported) Napi::MemoryManagement::AdjustExternalMemory(env, -s->reported);
  s->reported = 0;
  s->generation++;  // the old id is stale from here on
  free_.push_back(s->index);
  live_--;
}

}  // namespace ztw

// The table's own entries. dispose(id) frees at once and is idempotent.
ZTW_OP(dispose) {
  if (!a.has(0)) throw ztw::ArgError("argument 0: missing, expected a tensor");
  ztw::HandleTable::Of(a.env()).Release(a.env(), a.raw(0));
  return a.undefined();
}
ZTW_OP(isDisposed) {
  if (!a.has(0)) throw ztw::ArgError("argument 0: missing, expected a tensor");
  return a.retBool(ztw::HandleTable::Of(a.env()).Find(a.raw(0), 0) == nullptr);
}
