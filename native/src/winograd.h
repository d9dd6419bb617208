// Winograd's F(2x2, 3x3) (Lavin & Gray, 2016) for a 3x3 convolution with
// stride 1 over a channels-last map: each 2x2 output tile comes from a 4x4
// input tile as Y = A^T [(G g G^T) . (B^T d B)] A, 16 products per channel
// pair where the direct loop takes 36, in three passes over a row of tiles:
// the input transform (V), one small matrix product per coordinate of the
// 4x4 tile (M = V U, over the input channels), and the output transform,
// which the caller's epilogue takes (the heads' ReLU and pooling). Its
// matrices hold only 0, +-1 and +-1/2: the outputs differ from the direct
// loop's by float rounding (~4e-7 of the logits' scale in ResNet-56's heads).
#pragma once
#include <ATen/ATen.h>
#include <immintrin.h>
#include <cstdint>
#include "conv16.h"

namespace ztw {

// U = G g G^T of an [O, C, 3, 3] float tensor as [16 coordinates][C][O],
// computed once per tensor version (in double, rounded once) and kept in a
// bounded cache, as Conv16Weights.
const float* WinogradWeights(const at::Tensor& w);

// Drops the transformed weights (the allocator's emptyCache calls it).
void ClearWinogradCache();

namespace winograd {

#pragma GCC push_options
#pragma GCC target("avx512f")

using conv16::Unroll;

// B^T e for e = (e0, e1, e2, e3), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
static inline __attribute__((always_inline)) void InputRows(const __m512 (&e)[4], __m512 (&v)[4]) {
  v[0] = _mm512_sub_ps(e[0], e[2]);
  v[1] = _mm512_add_ps(e[1], e[2]);
  v[2] = _mm512_sub_ps(e[2], e[1]);
  v[3] = _mm512_sub_ps(e[1], e[3]);
}

// The input transform of one row of T tiles: V[coordinate][tile][C] =
// B^T d B, d the 4x4 window at padded rows 0..3 and columns 2 tx .. 2 tx + 3
// of `pad` (rows `row` floats apart, C channels a pixel). Each padded
// column's vertical transform is computed once for the two tiles that share
// it, and stays in registers from one tile to the next.
template <int CC>
static inline __attribute__((always_inline)) void InputTransform(const float* pad, int64_t row, int64_t Cr, int64_t T, float* V) {
  const int64_t C = CC ? CC : Cr, cs = T * C;  // cs: one coordinate on
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    auto column = [&](int64_t q, __m512 (&v)[4]) {
      __m512 e[4];
      Unroll<4>([&](auto a) { e[a] = _mm512_loadu_ps(pad + a * row + q * C + c0); });
      InputRows(e, v);
    };
    __m512 col[4][4];  // [column of the tile][row of B^T d]
    column(0, col[0]);
    column(1, col[1]);
    for (int64_t tx = 0; tx < T; tx++) {
      column(2 * tx + 2, col[2]);
      column(2 * tx + 3, col[3]);
      float* v = V + tx * C + c0;
      Unroll<4>([&](auto a) {
        const __m512 e[4] = {col[0][a], col[1][a], col[2][a], col[3][a]};
        __m512 h[4];
        InputRows(e, h);
        Unroll<4>([&](auto j) { _mm512_storeu_ps(v + (a * 4 + j) * cs, h[j]); });
      });
      Unroll<4>([&](auto a) { col[0][a] = col[2][a], col[1][a] = col[3][a]; });
    }
  }
}

// M[coordinate][tile][O] = V[coordinate][tile][:] U[coordinate] for TG tiles
// from t0, O = 16 OB: TG x OB accumulators in registers, each of V's values
// broadcast once for the OB output blocks. The bias goes into coordinate
// (1, 1), which A^T m A adds to each of the tile's four outputs once.
template <int CC, int OB, int TG>
static inline __attribute__((always_inline)) void Gemm(const float* V, const float* U, const float* bias, float* M, int64_t Cr, int64_t T, int64_t t0) {
  static_assert(TG * OB <= 28, "accumulators and weights in 32 registers");
  constexpr int64_t O = OB * 16;
  const int64_t C = CC ? CC : Cr;
  for (int coord = 0; coord < 16; coord++) {
    const float* v = V + (coord * T + t0) * C;
    const float* u = U + coord * C * O;
    __m512 acc[TG * OB];
    Unroll<TG * OB>([&](auto q) { acc[q] = coord == 5 && bias ? _mm512_loadu_ps(bias + (q % OB) * 16) : _mm512_setzero_ps(); });
    for (int64_t c = 0; c < C; c++) {
      __m512 wv[OB];
      Unroll<OB>([&](auto b) { wv[b] = _mm512_loadu_ps(u + c * O + b * 16); });
      Unroll<TG>([&](auto t) {
        const __m512 xb = _mm512_set1_ps(v[t * C + c]);
        Unroll<OB>([&](auto b) { acc[t * OB + b] = _mm512_fmadd_ps(xb, wv[b], acc[t * OB + b]); });
      });
    }
    float* m = M + (coord * T + t0) * O;
    Unroll<TG * OB>([&](auto q) { _mm512_storeu_ps(m + (q / OB) * O + (q % OB) * 16, acc[q]); });
  }
}

// M for all T tiles of the row: groups of TG, then at most one of 8, 4, 2
// and 1 each (TG is 16 at most).
template <int CC, int OB, int TG>
static inline void GemmRow(const float* V, const float* U, const float* bias, float* M, int64_t C, int64_t T) {
  static_assert(TG <= 16, "the tail covers fewer than 16 tiles");
  int64_t t0 = 0;
  for (; t0 + TG <= T; t0 += TG) Gemm<CC, OB, TG>(V, U, bias, M, C, T, t0);
  if constexpr (TG > 8)
    if (t0 + 8 <= T) Gemm<CC, OB, 8>(V, U, bias, M, C, T, t0), t0 += 8;
  if constexpr (TG > 4)
    if (t0 + 4 <= T) Gemm<CC, OB, 4>(V, U, bias, M, C, T, t0), t0 += 4;
  if constexpr (TG > 2)
    if (t0 + 2 <= T) Gemm<CC, OB, 2>(V, U, bias, M, C, T, t0), t0 += 2;
  if (t0 < T) Gemm<CC, OB, 1>(V, U, bias, M, C, T, t0);
}

// The output transform of tile tx, channel block b: y[i][j] = (A^T m A)[i][j],
// A^T = [1 1 1 0; 0 1 -1 -1], m read from M ([16][T][O], O floats a tile).
static inline __attribute__((always_inline)) void OutputTile(const float* M, int64_t T, int64_t O, int64_t tx, int b, __m512 (&y)[2][2]) {
  const float* m = M + tx * O + b * 16;
  const int64_t cs = T * O;
  __m512 s[4][2];
  Unroll<4>([&](auto a) {
    const __m512 m1 = _mm512_loadu_ps(m + (a * 4 + 1) * cs), m2 = _mm512_loadu_ps(m + (a * 4 + 2) * cs);
    s[a][0] = _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(m + (a * 4) * cs), m1), m2);
    s[a][1] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), _mm512_loadu_ps(m + (a * 4 + 3) * cs));
  });
  Unroll<2>([&](auto j) {
    y[0][j] = _mm512_add_ps(_mm512_add_ps(s[0][j], s[1][j]), s[2][j]);
    y[1][j] = _mm512_sub_ps(_mm512_sub_ps(s[1][j], s[2][j]), s[3][j]);
  });
}

#pragma GCC pop_options

}  // namespace winograd
}  // namespace ztw
