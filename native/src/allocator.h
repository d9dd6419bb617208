// A caching CPU allocator for tensor buffers (installed at load).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ztw {
void InstallCachingAllocator();
struct CacheStats { int64_t cachedBytes; int64_t liveBytes; int64_t hits; int64_t misses; };
CacheStats GetCacheStats();
void EmptyCache();
}  // namespace ztw
