// Why: activations are large, short-lived and of recurring sizes. glibc
// either mmaps them (every new buffer page-faults in again: ~1.5 ms per MB
// on this kind of VM, a ReLU over 8 MB took 15 ms instead of 2) or, past its
// dynamic threshold, carves them from the heap with 64-byte alignment and
// fragments it without bound (RSS grew 1 MB per op). Keeping freed large
// blocks in size buckets for reuse, as PyTorch's GPU allocator does, removes
// both. Small blocks are cached too: interleaved with the addon's own small
// objects they fragmented glibc's heap just the same (RSS grew 16 KB per
// step for two 8 KB tensors).
#include "allocator.h"
#include <c10/core/CPUAllocator.h>
#include <cstdlib>
#include <sys/mman.h>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace ztw {
namespace {

constexpr size_t kAlignment = 64;

// From this size on a block is a batch of feature maps (four 16x32x32 maps);
// one image's maps stay in exact buckets.
constexpr size_t kMapBytes = size_t(1) << 18;

struct Pool {
  std::mutex mu;
  std::unordered_map<void*, size_t> large;          // every live or cached block -> bucket size
  std::map<size_t, std::vector<void*>> free;        // bucket size -> cached blocks below kMapBytes
  // Cached map-sized blocks, the most recently freed last. A request takes
  // the most recent one that fits with at most 2x slack rather than one of
  // its own bucket: a batch that shrinks exit by exit asks for a new size
  // at nearly every layer, and blocks of its own bucket were last touched
  // one batch earlier, out of the caches (a 16-channel convolution ran 12%
  // slower into such buffers than into recently written ones).
  std::vector<std::pair<void*, size_t>> maps;
  int64_t cached = 0, live = 0, hits = 0, misses = 0;
  int64_t limit = 0;
};

Pool& pool() {
  static Pool* p = [] {
    auto* q = new Pool();  // never destroyed: tensors may be freed during exit
    const char* env = std::getenv("ZTW_CPU_CACHE_MB");
    q->limit = (env ? std::atoll(env) : 4096) * 1024 * 1024;
    return q;
  }();
  return *p;
}

// Buckets: 4 per power of two, so at most 25% of a block is slack.
size_t BucketOf(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  size_t step = std::max<size_t>(p / 8, kAlignment);
  return (n + step - 1) / step * step;
}

// Blocks of 2 MB and more on transparent huge pages where the kernel offers
// them on request (THP "madvise", as on this project's machines): a batch of
// 128 maps is 1-8 MB, 256-2048 small pages for the TLB to walk. At batch
// 128 on ResNet-56 (three alternating runs): plain forward ~1.5% and the
// early-exit runtime ~4% faster.
constexpr size_t kHugePage = size_t(2) << 20;

void* RawAlloc(size_t n) {
  void* p = nullptr;
  const size_t align = n >= kHugePage ? kHugePage : kAlignment;
  if (posix_memalign(&p, align, n) != 0) return nullptr;
#ifdef MADV_HUGEPAGE
  if (align == kHugePage) madvise(p, n, MADV_HUGEPAGE);  // advice only: failure leaves small pages
#endif
  return p;
}

void Free(void* p);

void* Alloc(size_t n) {
  if (n == 0) return nullptr;
  size_t b = BucketOf(n);
  auto& P = pool();
  {
    std::lock_guard<std::mutex> g(P.mu);
    if (b >= kMapBytes) {
      for (auto it = P.maps.rbegin(); it != P.maps.rend(); ++it)
        if (it->second >= b && it->second <= 2 * b) {
          void* p = it->first;
          const size_t got = it->second;
          P.maps.erase(std::next(it).base());
          P.cached -= got;
          P.live += got;
          P.hits++;
          return p;
        }
    } else {
      auto it = P.free.find(b);
      if (it != P.free.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        P.cached -= b;
        P.live += b;
        P.hits++;
        return p;
      }
    }
    P.misses++;
  }
  void* p = RawAlloc(b);
  if (!p) {
    EmptyCache();  // give cached blocks back and try once more
    p = RawAlloc(b);
    if (!p) throw std::bad_alloc();
  }
  std::lock_guard<std::mutex> g(P.mu);
  P.large[p] = b;
  P.live += b;
  return p;
}

void Free(void* p) {
  if (!p) return;
  auto& P = pool();
  {
    std::lock_guard<std::mutex> g(P.mu);
    auto it = P.large.find(p);
    if (it != P.large.end()) {
      size_t b = it->second;
      P.live -= b;
      if (P.cached + static_cast<int64_t>(b) <= P.limit) {
        if (b >= kMapBytes)
          P.maps.emplace_back(p, b);
        else
          P.free[b].push_back(p);
        P.cached += b;
        return;
      }
      P.large.erase(it);
    }
  }
  std::free(p);
}

class CachingCPUAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    void* p = Alloc(n);
    return {p, p, &Free, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }
};

}  // namespace

void InstallCachingAllocator() {
  const char* env = std::getenv("ZTW_CPU_CACHE_MB");
  if (env && std::string(env) == "0") return;
  static CachingCPUAllocator* alloc = new CachingCPUAllocator();
  c10::SetCPUAllocator(alloc, /*priority=*/1);
}

CacheStats GetCacheStats() {
  auto& P = pool();
  std::lock_guard<std::mutex> g(P.mu);
  return {P.cached, P.live, P.hits, P.misses};
}

void EmptyCache() {
  auto& P = pool();
  std::vector<void*> release;
  {
    std::lock_guard<std::mutex> g(P.mu);
    for (auto& [b, blocks] : P.free)
      for (void* p : blocks) {
        release.push_back(p);
        P.large.erase(p);
      }
    for (auto& [p, b] : P.maps) {
      release.push_back(p);
      P.large.erase(p);
    }
    P.free.clear();
    P.maps.clear();
    P.cached = 0;
  }
  for (void* p : release) std::free(p);
}

}  // namespace ztw
