#include "head_conv.h"
#include <ATen/Parallel.h>
#include <cstring>
#include "conv16.h"
#include "winograd.h"

namespace ztw {

namespace {

struct HeadConvShape {
  int64_t N, H, W, C, O;  // input [N, H, W, C] channels-last; O output channels, a multiple of 16
  int64_t k;              // pooling window: an (H / k) x (W / k) grid
};

// Columns computed: the pooling grid's, (W / k) * k (floor pooling drops the rest).
int64_t Cols(const HeadConvShape& s) { return s.W / s.k * s.k; }
// Floats of one row of the zero-padded input copy: Cols + 2 pixels.
int64_t PaddedRow(const HeadConvShape& s) { return (Cols(s) + 2) * s.C; }
// Floats of scratch one thread needs: the padded rows, the windows' max and
// sum, the window of each column (the direct loop) or a tile row's V and M
// (Winograd).
int64_t Scratch(const HeadConvShape& s) { return (s.k + 2) * PaddedRow(s) + 2 * (s.W / s.k) * s.O + Cols(s) + 16 * (Cols(s) / 2) * (s.C + s.O); }

#pragma GCC push_options
#pragma GCC target("avx512f")
// GCC 12's _mm512_max_ps passes _mm512_undefined_ps() as the unused merge
// source, which -Wmaybe-uninitialized reports at every inlined call.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

using conv16::Unroll;

// pooled[n][o][i][j] = avg + alpha * (max - avg) from window row i's max
// and sum ([W / k][O]), as the separate pooling computes it.
void WritePooled(const float* mx, const float* sum, float alpha, float* pooled, const HeadConvShape& s, int64_t n, int64_t i) {
  const int64_t oh = s.H / s.k, ow = s.W / s.k;
  const __m512 inv = _mm512_set1_ps(1.0f / static_cast<float>(s.k * s.k)), a = _mm512_set1_ps(alpha);
  for (int64_t j = 0; j < ow; j++)
    for (int64_t o0 = 0; o0 < s.O; o0 += 16) {
      const __m512 av = _mm512_mul_ps(_mm512_loadu_ps(sum + j * s.O + o0), inv);
      const __m512 mix = _mm512_add_ps(av, _mm512_mul_ps(a, _mm512_sub_ps(_mm512_loadu_ps(mx + j * s.O + o0), av)));
      alignas(64) float lanes[16];
      _mm512_store_ps(lanes, mix);
      for (int u = 0; u < 16; u++) pooled[((n * s.O + o0 + u) * oh + i) * ow + j] = lanes[u];
    }
}

// Units [begin, end) of the N * (H / k) window rows: for window row i of
// sample n, pooled[n][o][i][j] = avg + alpha * (max - avg) of relu(acc) over
// every window (i, j) of that row, by the direct loop (conv16.h). Each output
// vector is folded into its window's max and sum as it leaves the registers
// (row by row, left to right; a NaN stays NaN through the sum). Odd windows
// (Winograd takes the even ones).
template <int CC, int P, int B>
void Units(const float* x, const float* packed, const float* bias, float alpha, float* pooled, float* scratch, const HeadConvShape& s, int64_t begin,
           int64_t end) {
  const int64_t oh = s.H / s.k, ow = s.W / s.k, cols = Cols(s), row = PaddedRow(s);
  float* pad = scratch;
  float* mx = scratch + (s.k + 2) * row;  // [ow][O]
  float* sum = mx + ow * s.O;
  // The window of each column: a division per pixel cost a fifth of the time.
  int32_t* win = reinterpret_cast<int32_t*>(sum + ow * s.O);
  for (int64_t x = 0; x < cols; x++) win[x] = static_cast<int32_t>(x / s.k);
  const __m512 zero = _mm512_setzero_ps();
  auto fold = [&](int64_t px, int b, __m512 v) {
    v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, zero);
    float* m = mx + win[px] * s.O + b * 16;
    float* sm = sum + win[px] * s.O + b * 16;
    const __m512 old = _mm512_loadu_ps(m);
    _mm512_storeu_ps(m, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(old, v, _CMP_LT_OQ), old, v));
    _mm512_storeu_ps(sm, _mm512_add_ps(_mm512_loadu_ps(sm), v));
  };
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / oh, i = t % oh;
    conv16::CopyPadded(x + n * s.H * s.W * s.C, s.H, s.W, s.C, i * s.k, s.k, cols, pad);
    std::memset(mx, 0, sizeof(float) * 2 * ow * s.O);  // after a ReLU every value is >= 0
    for (int64_t b0 = 0; b0 < s.O; b0 += 16 * B) {  // B blocks of 16 channels a pass over the rows
      __m512 bv[B];
      for (int b = 0; b < B; b++) bv[b] = bias ? _mm512_loadu_ps(bias + b0 + 16 * b) : zero;
      auto foldHere = [&](int64_t px, int b, __m512 v) { fold(px, static_cast<int>(b0 / 16) + b, v); };
      for (int64_t r = 0; r < s.k; r++) conv16::Row<CC, P, B>(pad + r * row, row, packed + b0 * 9 * s.C, s.C, bv, cols, foldHere);
    }
    WritePooled(mx, sum, alpha, pooled, s, n, i);
  }
}

// Units as above through Winograd's F(2x2, 3x3) (winograd.h), for an even
// window (no 2x2 tile straddles two windows): per row of tiles the input
// transform, the products and the output transform, whose four outputs a
// tile are ReLU'd and folded into their window's max and sum in registers
// (timings: head_conv.h).
template <int CC, int OB, int TG>
void WinoUnits(const float* x, const float* U, const float* bias, float alpha, float* pooled, float* scratch, const HeadConvShape& s, int64_t begin,
               int64_t end) {
  constexpr int64_t O = OB * 16;
  const int64_t C = CC ? CC : s.C;
  const int64_t oh = s.H / s.k, ow = s.W / s.k, cols = Cols(s), row = PaddedRow(s), T = cols / 2, perWindow = s.k / 2;
  float* pad = scratch;
  float* mx = scratch + (s.k + 2) * row;  // [ow][O]
  float* sum = mx + ow * O;
  float* V = sum + ow * O;  // [16][T][C]
  float* M = V + 16 * T * C;  // [16][T][O]
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / oh, i = t % oh;
    conv16::CopyPadded(x + n * s.H * s.W * C, s.H, s.W, C, i * s.k, s.k, cols, pad);
    std::memset(mx, 0, sizeof(float) * 2 * ow * O);  // after a ReLU every value is >= 0
    for (int64_t ty = 0; ty < s.k / 2; ty++) {
      winograd::InputTransform<CC>(pad + 2 * ty * row, row, C, T, V);
      winograd::GemmRow<CC, OB, TG>(V, U, bias, M, C, T);
      for (int64_t w = 0; w < ow; w++)
        for (int b = 0; b < OB; b++) {
          float* mp = mx + w * O + b * 16;
          float* sp = sum + w * O + b * 16;
          __m512 mv = _mm512_loadu_ps(mp), sv = _mm512_loadu_ps(sp);
          for (int64_t tx = w * perWindow; tx < (w + 1) * perWindow; tx++) {
            __m512 y[2][2];
            winograd::OutputTile(M, T, O, tx, b, y);
            Unroll<4>([&](auto q) {
              const __m512 r = _mm512_max_ps(zero, y[q / 2][q % 2]);  // ReLU; a NaN stays NaN
              mv = _mm512_max_ps(r, mv);
              sv = _mm512_add_ps(sv, r);
            });
          }
          _mm512_storeu_ps(mp, mv);
          _mm512_storeu_ps(sp, sv);
        }
    }
    WritePooled(mx, sum, alpha, pooled, s, n, i);
  }
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

// 64-channel heads with an odd window run the direct loop (two passes of
// two blocks) up to this batch: 20.1 against 22.2 us at one sample, 13.0
// against 13.7 at 8, where oneDNN and the pooling pass won from 32 on (13.6
// against 12.3, 12.2 against 11.0 at 128; ResNet-56's 8x8 heads,
// alternating in one process, before Winograd served even windows).
constexpr int64_t kFused64Batch = 8;

// Winograd serves even windows into 16, 32 or 64 channels at every batch:
// faster than the direct loop at 1 to 128 samples for each of ResNet-56's
// heads (WinoUnits). The direct loop serves the rest of 16 and 32 channels.
bool WinogradServes(int64_t O, int64_t k) { return k % 2 == 0 && (O == 16 || O == 32 || O == 64); }
bool DirectServes(int64_t O, int64_t N) { return O == 16 || O == 32 || (O == 64 && N <= kFused64Batch); }

}  // namespace

at::Tensor HeadConvPool(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, int64_t stride, int64_t padding, float alpha, int64_t k) {
  const auto isFloat = [](const at::Tensor& t) { return t.scalar_type() == at::kFloat && t.device().is_cpu(); };
  const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b && b->requires_grad()));
  if (!HasAvx512() || grad || stride != 1 || padding != 1 || x.dim() != 4 || w.dim() != 4 || !isFloat(x) || !isFloat(w) || w.size(2) != 3 || w.size(3) != 3 || w.size(1) != x.size(1) || x.size(1) % 16 != 0 || x.size(0) < 1)
    return {};
  if (b && (b->dim() != 1 || b->size(0) != w.size(0) || !isFloat(*b))) return {};
  const HeadConvShape s{x.size(0), x.size(2), x.size(3), x.size(1), w.size(0), k};
  if (k < 1 || s.H < k || s.W < k) return {};
  const bool wino = WinogradServes(s.O, k);
  if (!wino && !DirectServes(s.O, s.N)) return {};
  const auto xc = x.contiguous(at::MemoryFormat::ChannelsLast);
  const auto bc = b ? b->contiguous() : at::Tensor();
  auto out = at::empty({s.N, s.O, s.H / k, s.W / k}, x.options().memory_format(at::MemoryFormat::Contiguous));
  const float* packed = wino ? nullptr : Conv16Weights(w);
  const float* U = wino ? WinogradWeights(w) : nullptr;
  const float *xp = xc.data_ptr<float>(), *bp = b ? bc.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  // One window row of one sample a task: at one image the 4 rows of the grid
  // split over both threads.
  at::parallel_for(0, s.N * (s.H / k), 1, [&](int64_t begin, int64_t end) {
    float* scratch = conv16::ThreadScratch(Scratch(s));
    // Winograd: a tile group's accumulators fill 16 registers (16 tiles of one block, 8 of two, 4 of four).
    if (wino) {
      if (s.O == 16) return s.C == 16 ? WinoUnits<16, 1, 16>(xp, U, bp, alpha, op, scratch, s, begin, end) : WinoUnits<0, 1, 16>(xp, U, bp, alpha, op, scratch, s, begin, end);
      if (s.O == 32) return s.C == 32 ? WinoUnits<32, 2, 8>(xp, U, bp, alpha, op, scratch, s, begin, end) : WinoUnits<0, 2, 8>(xp, U, bp, alpha, op, scratch, s, begin, end);
      return s.C == 64 ? WinoUnits<64, 4, 4>(xp, U, bp, alpha, op, scratch, s, begin, end) : WinoUnits<0, 4, 4>(xp, U, bp, alpha, op, scratch, s, begin, end);
    }
    // Direct: two output channel blocks a band (8 pixels) for 32 and 64 channels, else one (16).
    if (s.C == 16 && s.O == 16) return Units<16, 16, 1>(xp, packed, bp, alpha, op, scratch, s, begin, end);
    if (s.C == 32 && s.O == 32) return Units<32, 8, 2>(xp, packed, bp, alpha, op, scratch, s, begin, end);
    if (s.O % 32 == 0) return Units<0, 8, 2>(xp, packed, bp, alpha, op, scratch, s, begin, end);
    Units<0, 16, 1>(xp, packed, bp, alpha, op, scratch, s, begin, end);
  });
  return out;
}

}  // namespace ztw
