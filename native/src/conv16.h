// A 3x3 convolution (stride 1, padding 1) into blocks of 16 output
// channels, the shape of every convolution in a CIFAR ResNet's first stage
// and of its internal classifiers there (the heads also use two blocks): a
// direct loop of AVX-512 register blocks over a channels-last map, with the
// output handed to an epilogue (a store with the residual add and ReLU, or
// the heads' pooling). oneDNN reached ~65% of the FMA peak on 16 channels
// (each output pixel is only 144 products a channel), against ~95% on 64;
// this loop broadcasts each input value once for the three kernel columns
// it meets.
#pragma once
#include <ATen/ATen.h>
#include <immintrin.h>
#include "dnnl_conv.h"
#include "kernels.h"
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

namespace ztw {

// The loop is written for AVX-512 (elsewhere oneDNN serves every shape).
bool HasAvx512();

// The packed weights of an [O, C, 3, 3] float tensor, O a multiple of 16
// ([O / 16][3][3][C][16]), packed once per tensor version and kept in a
// bounded cache.
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

// This thread's scratch memory, at least `floats` long (one buffer for the
// convolutions and the heads: the padded rows stay in the same cache lines).
float* ThreadScratch(int64_t floats);

// Rows y0 - 1 .. y0 + rows of the channels-last sample xn [H, W, C],
// columns -1 .. cols, into `pad` (rows + 2 rows of (cols + 2) * C floats):
// zeros where the convolution's padding or an unused map edge is. With
// relu, relu(x) (an input whose ReLU was left to its reader).
inline void CopyPadded(const float* xn, int64_t H, int64_t W, int64_t C, int64_t y0, int64_t rows, int64_t cols, float* pad, bool relu = false) {
  const int64_t row = (cols + 2) * C, have = std::min(W, cols + 1);  // input columns the copy holds
  for (int64_t r = 0; r < rows + 2; r++) {
    float* to = pad + r * row;
    const int64_t y = y0 - 1 + r;
    if (y < 0 || y >= H) {
      std::memset(to, 0, sizeof(float) * row);
      continue;
    }
    std::memset(to, 0, sizeof(float) * C);
    if (relu)
      ReluCopy(xn + y * W * C, to + C, have * C);
    else
      std::memcpy(to + C, xn + y * W * C, sizeof(float) * have * C);
    std::memset(to + (1 + have) * C, 0, sizeof(float) * (row - (1 + have) * C));
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f")

// Calls f(std::integral_constant<int, I>) for I = 0 .. N - 1, unrolled.
template <class F, int... I>
static inline __attribute__((always_inline)) void UnrollSeq(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
static inline __attribute__((always_inline)) void Unroll(F&& f) {
  UnrollSeq(f, std::make_integer_sequence<int, N>{});
}

// P output pixels of one row x B blocks of 16 output channels, in
// registers: acc[p][b] = bias[b] + sum over (kh, c, kw) of
// in[kh][p + kw][c] * w_b[kh][kw][c]; then epi(p, b, acc) for p = 0 .. P - 1
// (and b in order) as the values leave. Each input value is broadcast once
// for the three kernel columns and the B channel blocks it meets (outputs
// q, q - 1 and q - 2): a broadcast per product made the loop 20% slower on
// 16 channels. `in` points at the padded copy's pixel (row r, x0), the
// top-left of output x0's window; w at the first block's [3][3][C][16], a
// block's weights 9 C 16 floats on. CC is C when known at compile time
// (every offset an immediate), else 0. Indices are compile-time constants
// (Unroll), so that the accumulators stay in registers: with loops GCC left
// them on the stack.
template <int CC, int P, int B, class Epi>
static inline __attribute__((always_inline, flatten)) void Band(const float* in, int64_t row, const float* w, int64_t Cr, const __m512 (&bias)[B], Epi& epi) {
  static_assert(P >= 1 && P * B <= 16 && B * 3 + P * B <= 30, "accumulators and weights in 32 registers");
  const int64_t C = CC ? CC : Cr;
  __m512 acc[P * B];
  Unroll<P * B>([&](auto q) { acc[q] = bias[q % B]; });
  for (int kh = 0; kh < 3; kh++) {
    const float* src = in + kh * row;
    const float* wk = w + kh * 3 * C * 16;
    for (int64_t c = 0; c < C; c++, src++, wk += 16) {
      __m512 wv[3][B];
      Unroll<3 * B>([&](auto i) { wv[i / B][i % B] = _mm512_loadu_ps(wk + (i / B) * C * 16 + (i % B) * 9 * C * 16); });
      Unroll<P + 2>([&](auto q) {
        const __m512 xb = _mm512_set1_ps(src[q * C]);
        Unroll<3>([&](auto kw) {
          constexpr int p = decltype(q)::value - decltype(kw)::value;
          if constexpr (p >= 0 && p < P) Unroll<B>([&](auto b) { acc[p * B + b] = _mm512_fmadd_ps(xb, wv[kw][b], acc[p * B + b]); });
        });
      });
    }
  }
  Unroll<P * B>([&](auto q) { epi(q / B, q % B, acc[q]); });
}

// One output row, columns [0, cols), B channel blocks: bands of P pixels,
// then of 8, 4, 2 and 1; epi(x, b, acc) for every column x in order.
template <int CC, int P, int B, class Epi>
static inline __attribute__((always_inline)) void Row(const float* pad, int64_t row, const float* w, int64_t C, const __m512 (&bias)[B], int64_t cols, Epi& epi) {
  int64_t x0 = 0;
  auto at = [&](int64_t p, int b, __m512 v) { epi(x0 + p, b, v); };
  for (; x0 + P <= cols; x0 += P) Band<CC, P, B>(pad + x0 * C, row, w, C, bias, at);
  if constexpr (P > 8)
    if (x0 + 8 <= cols) Band<CC, 8, B>(pad + x0 * C, row, w, C, bias, at), x0 += 8;
  if constexpr (P > 4)
    if (x0 + 4 <= cols) Band<CC, 4, B>(pad + x0 * C, row, w, C, bias, at), x0 += 4;
  if constexpr (P > 2)
    if (x0 + 2 <= cols) Band<CC, 2, B>(pad + x0 * C, row, w, C, bias, at), x0 += 2;
  if (x0 < cols) Band<CC, 1, B>(pad + x0 * C, row, w, C, bias, at);
}

#pragma GCC pop_options

}  // namespace conv16
}  // namespace ztw
