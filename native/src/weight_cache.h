// What the convolutions derive from a weight tensor (oneDNN's reordered
// layouts, the 16-channel loop's packed copy), kept per tensor until the
// tensor is written in place or freed.
#pragma once
#include <ATen/ATen.h>
#include <mutex>
#include <vector>
#include "lru.h"

namespace ztw {

// Keyed by the TensorImpl's address: a weak reference keeps the address
// from being reused while the entry lives, and the version and data pointer
// catch in-place updates. Not thread-safe: callers hold their own lock.
template <class V>
class WeightCache {
 public:
  explicit WeightCache(size_t capacity) : entries_(capacity) {}
  // The value kept for w: an empty V when w is new or was written since.
  V& For(const at::Tensor& w) {
    const auto* impl = w.unsafeGetTensorImpl();
    const auto version = static_cast<int64_t>(w._version());
    auto* e = entries_.Find(impl);
    if (!e || e->owner.expired() || e->version != version || e->data != w.data_ptr())
      e = &entries_.Insert(impl, Entry{Weak(w.getIntrusivePtr()), version, w.data_ptr(), V{}});
    return e->value;
  }
  void Clear() { entries_.Clear(); }

 private:
  using Weak = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  struct Entry {
    Weak owner;
    int64_t version;
    const void* data;
    V value;
  };
  Lru<const c10::TensorImpl*, Entry> entries_;
};

// Floats derived from an [O, C, ...] float weight tensor (the 16-channel
// loop's packed copy, Winograd's transformed one): perPair * O * C of them,
// made by derive(w's floats, out, O, C) once per tensor version, under a
// lock (both threads' tasks may ask).
class DerivedWeights {
 public:
  using Derive = void (*)(const float* w, float* out, int64_t O, int64_t C);
  DerivedWeights(int64_t perPair, Derive derive) : perPair_(perPair), derive_(derive) {}
  // The floats stay put until the cache evicts the entry: 512 tensors, more
  // than any network here has, and never between this return and the call.
  const float* For(const at::Tensor& w) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& v = entries_.For(w);
    if (v.empty()) {
      const auto plain = w.contiguous();
      v.resize(static_cast<size_t>(perPair_ * w.size(0) * w.size(1)));
      derive_(plain.data_ptr<float>(), v.data(), w.size(0), w.size(1));
    }
    return v.data();
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.Clear();
  }

 private:
  const int64_t perPair_;
  const Derive derive_;
  std::mutex mutex_;
  WeightCache<std::vector<float>> entries_{512};
};

}  // namespace ztw
