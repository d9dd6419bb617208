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
#pragma GCC diagnostic pop

// out[i] = max(x[i], 0) for n floats; a NaN stays NaN, as in at::relu.
void ReluCopy(const float* x, float* out, int64_t n);

}  // namespace ztw
