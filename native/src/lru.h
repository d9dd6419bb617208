// The native caches' eviction: a least-recently-used map of bounded size.
#pragma once
#include <cstddef>
#include <list>
#include <unordered_map>
#include <utility>

namespace ztw {

// A least-recently-used map of bounded size.
template <class K, class V, class H = std::hash<K>>
class Lru {
 public:
  explicit Lru(size_t capacity) : capacity_(capacity) {}
  V* Find(const K& k) {
    auto it = index_.find(k);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }
  V& Insert(const K& k, V v) {
    if (auto* old = Find(k)) return *old = std::move(v);
    order_.emplace_front(k, std::move(v));
    index_[k] = order_.begin();
    if (index_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return order_.front().second;
  }
  void Clear() {
    index_.clear();
    order_.clear();
  }

 private:
  size_t capacity_;
  std::list<std::pair<K, V>> order_;
  std::unordered_map<K, typename std::list<std::pair<K, V>>::iterator, H> index_;
};

}  // namespace ztw
