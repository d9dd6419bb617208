// Our own vector loops (the heads' pooling and classifier in ops_exits.cc,
// the ReLU without autograd, the survivors' copy). The addon is built
// without -march, so that it loads on any x86-64: each kernel is compiled
// for AVX-512, AVX2 and the baseline and the loader picks one
// (target_clones); the baseline's SSE made the pooling 3x slower.
#pragma once
#include <cstdint>

namespace ztw {

// Sixteen floats as one value (GCC's vector extension): one zmm register in
// the AVX-512 build, two ymm or four xmm otherwise. The helpers are always
// inlined into each target's clone of their callers, so the ABI of passing
// a 64-byte vector, which GCC warns about, never applies.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float Float16 __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) Float16 Load16(const float* p) {
  Float16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline __attribute__((always_inline)) void Store16(float* p, Float16 v) { __builtin_memcpy(p, &v, sizeof v); }

// x . y over n floats, sixteen partial sums in one vector.
static inline __attribute__((always_inline)) float Dot(const float* x, const float* y, int64_t n) {
  Float16 part = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) part += Load16(x + i) * Load16(y + i);
  float sum = 0;
  for (int u = 0; u < 16; u++) sum += part[u];
  for (; i < n; i++) sum += x[i] * y[i];
  return sum;
}
#pragma GCC diagnostic pop

// out[i] = max(x[i], 0) for n floats; a NaN stays NaN, as in at::relu.
void ReluCopy(const float* x, float* out, int64_t n);

// Rows [begin, end) of logits = mean over the S pixels of x's C channels,
// times w^T [K, C], plus b (may be null): a global average pooling and the
// classifier after it. x is channels-last ([N, S, C]) or, with channelsLast
// false, NCHW ([N, C, S]); mean holds C floats of scratch.
void MeanPoolLinearRows(const float* x, const float* w, const float* b, float* logits, float* mean, int64_t begin, int64_t end, int64_t C, int64_t S,
                        int64_t K, bool channelsLast);

}  // namespace ztw
