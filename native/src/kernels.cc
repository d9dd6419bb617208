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

__attribute__((target_clones("avx512f", "avx2", "default")))
void MeanPoolLinearRows(const float* x, const float* w, const float* b, float* logits, float* mean, int64_t begin, int64_t end, int64_t C, int64_t S,
                        int64_t K, bool channelsLast) {
  const float inv = 1.0f / static_cast<float>(S);
  for (int64_t n = begin; n < end; n++) {
    const float* xn = x + n * S * C;
    if (channelsLast) {
      int64_t c0 = 0;
      for (; c0 + 16 <= C; c0 += 16) {
        Float16 sum = {};
        for (int64_t s = 0; s < S; s++) sum += Load16(xn + s * C + c0);
        Store16(mean + c0, sum * inv);
      }
      for (; c0 < C; c0++) {
        float sum = 0;
        for (int64_t s = 0; s < S; s++) sum += xn[s * C + c0];
        mean[c0] = sum * inv;
      }
    } else {
      for (int64_t c = 0; c < C; c++) {
        Float16 part = {};
        const float* xc = xn + c * S;
        int64_t s = 0;
        for (; s + 16 <= S; s += 16) part += Load16(xc + s);
        float sum = 0;
        for (int u = 0; u < 16; u++) sum += part[u];
        for (; s < S; s++) sum += xc[s];
        mean[c] = sum * inv;
      }
    }
    for (int64_t k = 0; k < K; k++) logits[n * K + k] = Dot(mean, w + k * C, C) + (b ? b[k] : 0.0f);
  }
}
#pragma GCC diagnostic pop

}  // namespace ztw
