// A 3x3 convolution (stride 1, padding 1) into 16 output channels, the
// shape of every convolution in a CIFAR ResNet's first stage and of its
// internal classifiers there: a direct loop of AVX-512 register blocks over
// a channels-last map, with the output handed to an epilogue (a store with
// the residual add and ReLU, or the heads' pooling). oneDNN reaches ~60% of
// the FMA peak on 16 channels (each output pixel is only 144 products per
// channel), against ~95% on 64; this loop broadcasts each input value once
// for the three kernel columns it meets.
#pragma once
#include <ATen/ATen.h>
#include <immintrin.h>
#include "dnnl_conv.h"
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace ztw {

// The loop is written for AVX-512 (elsewhere oneDNN serves every shape).
bool HasAvx512();

// The packed weights of a [16, C, 3, 3] float tensor ([3][3][C][16]),
// packed once per tensor version and kept in a bounded cache.
const float* Conv16Weights(const at::Tensor& w);

// Drops the packed weights (the allocator's emptyCache calls it).
void ClearConv16Cache();

// relu?(conv3x3(x, w) + b + add?) for inference, into a channels-last map
// (the addend's memory when fusion.accumulate gives it up): a ResNet's
// first-stage convolution. An undefined tensor where the loop does not serve
// the arguments (gradients, another geometry, more than 16 output channels,
// an input not channels-last, no AVX-512): the caller then runs oneDNN.
at::Tensor Conv16(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride, at::IntArrayRef padding,
                  at::IntArrayRef dilation, int64_t groups, const ConvFusion& fusion);

namespace conv16 {

// Rows y0 - 1 .. y0 + rows of the channels-last sample xn [H, W, C],
// columns -1 .. cols, into `pad` (rows + 2 rows of (cols + 2) * C floats):
// zeros where the convolution's padding or an unused map edge is.
inline void CopyPadded(const float* xn, int64_t H, int64_t W, int64_t C, int64_t y0, int64_t rows, int64_t cols, float* pad) {
  const int64_t row = (cols + 2) * C, have = std::min(W, cols + 1);  // input columns the copy holds
  for (int64_t r = 0; r < rows + 2; r++) {
    float* to = pad + r * row;
    const int64_t y = y0 - 1 + r;
    if (y < 0 || y >= H) {
      std::memset(to, 0, sizeof(float) * row);
      continue;
    }
    std::memset(to, 0, sizeof(float) * C);
    std::memcpy(to + C, xn + y * W * C, sizeof(float) * have * C);
    std::memset(to + (1 + have) * C, 0, sizeof(float) * (row - (1 + have) * C));
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f")

// The accumulators as named variables: GCC left an array of them on the
// stack (an FMA with a load and a store each). X(q, q - 1, q - 2), with a0
// standing in for the names below 0 (their uses are compiled out).
#define ZTW_ACC16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define ZTW_INPUTS18(X)                                                                                                         \
  X(0, a0, a0) X(1, a0, a0) X(2, a1, a0) X(3, a2, a1) X(4, a3, a2) X(5, a4, a3) X(6, a5, a4) X(7, a6, a5) X(8, a7, a6) X(9, a8, a7) \
      X(10, a9, a8) X(11, a10, a9) X(12, a11, a10) X(13, a12, a11) X(14, a13, a12) X(15, a14, a13) X(16, a15, a14) X(17, a15, a15)

// P output pixels of one row, 16 channels, in registers: acc = bias + sum
// over (kh, c, kw) of in[kh][p + kw][c] * w[kh][kw][c]; then epi(p, acc)
// for p = 0 .. P - 1 in order. Each input value is broadcast once for the
// three kernel columns it meets (outputs q, q - 1 and q - 2): a broadcast
// per product made the loop 20% slower. `in` points at the padded copy's
// pixel (row r, x0), the top-left of output x0's window; w at [3][3][C][16].
// CC is C when known at compile time (every offset an immediate), else 0.
template <int CC, int P, class Epi>
static inline __attribute__((always_inline)) void Band(const float* in, int64_t row, const float* w, int64_t Cr, __m512 bias, Epi& epi) {
  static_assert(P >= 1 && P <= 16, "16 accumulators");
  const int64_t C = CC ? CC : Cr;
#define ZTW_DECL(q) __m512 a##q = bias;
  ZTW_ACC16(ZTW_DECL)
  ZTW_DECL(16) ZTW_DECL(17)  // named in the input steps past the band, never used
#undef ZTW_DECL
  for (int kh = 0; kh < 3; kh++) {
    const float* src = in + kh * row;
    const float* wk = w + kh * 3 * C * 16;
    for (int64_t c = 0; c < C; c++, src++, wk += 16) {
      const __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + C * 16), w2 = _mm512_loadu_ps(wk + 2 * C * 16);
#define ZTW_INPUT(q, qm1, qm2)                                             \
  if constexpr (q < P + 2) {                                               \
    const __m512 xb = _mm512_set1_ps(src[q * C]);                          \
    if constexpr (q < P) a##q = _mm512_fmadd_ps(xb, w0, a##q);             \
    if constexpr (q >= 1 && q - 1 < P) qm1 = _mm512_fmadd_ps(xb, w1, qm1); \
    if constexpr (q >= 2 && q - 2 < P) qm2 = _mm512_fmadd_ps(xb, w2, qm2); \
  }
      ZTW_INPUTS18(ZTW_INPUT)
#undef ZTW_INPUT
    }
  }
#define ZTW_EPI(q) \
  if constexpr (q < P) epi(q, a##q);
  ZTW_ACC16(ZTW_EPI)
#undef ZTW_EPI
}

// One output row, columns [0, cols): bands of 16 pixels, then 8, 4, 2 and
// 1; epi(x, acc) for every column x in order.
template <int CC, class Epi>
static inline __attribute__((always_inline)) void Row(const float* pad, int64_t row, const float* w, int64_t C, __m512 bias, int64_t cols, Epi& epi) {
  int64_t x0 = 0;
  auto at = [&](int64_t p, __m512 v) { epi(x0 + p, v); };
  for (; x0 + 16 <= cols; x0 += 16) Band<CC, 16>(pad + x0 * C, row, w, C, bias, at);
  if (x0 + 8 <= cols) Band<CC, 8>(pad + x0 * C, row, w, C, bias, at), x0 += 8;
  if (x0 + 4 <= cols) Band<CC, 4>(pad + x0 * C, row, w, C, bias, at), x0 += 4;
  if (x0 + 2 <= cols) Band<CC, 2>(pad + x0 * C, row, w, C, bias, at), x0 += 2;
  if (x0 < cols) Band<CC, 1>(pad + x0 * C, row, w, C, bias, at);
}

#undef ZTW_ACC16
#undef ZTW_INPUTS18
#pragma GCC pop_options

}  // namespace conv16
}  // namespace ztw
