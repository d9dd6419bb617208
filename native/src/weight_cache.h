// What the convolutions derive from a weight tensor (oneDNN's reordered
// layouts, the 16-channel loop's packed copy), kept per tensor until the
// tensor is written in place or freed.
#pragma once
#include <ATen/ATen.h>
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

}  // namespace ztw
