#include "kernels.h"

namespace ztw {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
__attribute__((target_clones("avx512f", "avx2", "default")))
void ReluCopy(const float* x, float* out, int64_t n) {
  const Float16 zero = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const Float16 v = Load16(x + i);
    Store16(out + i, v < zero ? zero : v);
  }
  for (; i < n; i++) out[i] = x[i] < 0.0f ? 0.0f : x[i];
}
#pragma GCC diagnostic pop

}  // namespace ztw
