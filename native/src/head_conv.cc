#include "head_conv.h"
#include <ATen/Parallel.h>
#include <cstring>
#include "conv16.h"

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
// sum, the window of each column.
int64_t Scratch(const HeadConvShape& s) { return (s.k + 2) * PaddedRow(s) + 2 * (s.W / s.k) * s.O + Cols(s); }

#pragma GCC push_options
#pragma GCC target("avx512f")
// GCC 12's _mm512_max_ps passes _mm512_undefined_ps() as the unused merge
// source, which -Wmaybe-uninitialized reports at every inlined call.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Units [begin, end) of the N * (H / k) window rows: for window row i of
// sample n, pooled[n][o][i][j] = avg + alpha * (max - avg) of relu(acc) over
// every window (i, j) of that row. Each output vector is folded into its
// window's max and sum as it leaves the registers (row by row, left to
// right; a NaN stays NaN through the sum).
//
// KW > 0 (the window's width, P a multiple of it, every row whole bands):
// each band's outputs stay in registers and every window's max and sum are
// loaded and stored once a row, folded in the same per-pixel order (the same
// numbers): the per-pixel loads and stores were ~15% of the loop's samples.
template <int CC, int P, int B, int KW>
void Units(const float* x, const float* packed, const float* bias, float alpha, float* pooled, float* scratch, const HeadConvShape& s, int64_t begin,
           int64_t end) {
  const int64_t oh = s.H / s.k, ow = s.W / s.k, cols = Cols(s), row = PaddedRow(s);
  const float inv = 1.0f / static_cast<float>(s.k * s.k);
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
      for (int64_t r = 0; r < s.k; r++) {
        if constexpr (KW > 0) {
          for (int64_t x0 = 0; x0 < cols; x0 += P) {
            __m512 v[P * B];
            auto keep = [&](int64_t p, int b, __m512 a) { v[p * B + b] = a; };
            conv16::Band<CC, P, B>(pad + r * row + x0 * s.C, row, packed + b0 * 9 * s.C, s.C, bv, keep);
            conv16::Unroll<P / KW * B>([&](auto wb) {
              constexpr int w = decltype(wb)::value / B, b = decltype(wb)::value % B;
              const int64_t at = (x0 / KW + w) * s.O + b0 + b * 16;
              __m512 m = _mm512_loadu_ps(mx + at), sm = _mm512_loadu_ps(sum + at);
              conv16::Unroll<KW>([&](auto j) {
                const __m512 x = _mm512_max_ps(zero, v[(w * KW + decltype(j)::value) * B + b]);  // ReLU; a NaN stays NaN
                m = _mm512_max_ps(x, m);  // as the blend above: a NaN x leaves m
                sm = _mm512_add_ps(sm, x);
              });
              _mm512_storeu_ps(mx + at, m);
              _mm512_storeu_ps(sum + at, sm);
            });
          }
        } else {
          conv16::Row<CC, P, B>(pad + r * row, row, packed + b0 * 9 * s.C, s.C, bv, cols, foldHere);
        }
      }
    }
    for (int64_t j = 0; j < ow; j++)  // pooled[n][o][i][j], as the separate pooling computes it
      for (int64_t o0 = 0; o0 < s.O; o0 += 16) {
        const __m512 av = _mm512_mul_ps(_mm512_loadu_ps(sum + j * s.O + o0), _mm512_set1_ps(inv));
        const __m512 mix = _mm512_add_ps(av, _mm512_mul_ps(_mm512_set1_ps(alpha), _mm512_sub_ps(_mm512_loadu_ps(mx + j * s.O + o0), av)));
        alignas(64) float lanes[16];
        _mm512_store_ps(lanes, mix);
        for (int u = 0; u < 16; u++) pooled[((n * s.O + o0 + u) * oh + i) * ow + j] = lanes[u];
      }
  }
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

// 64-channel heads run fused (two passes of two blocks) up to this batch:
// 20.1 against 22.2 us at one sample, 13.0 against 13.7 at 8, where oneDNN
// and the pooling pass won from 32 on (13.6 against 12.3, 12.2 against 11.0
// at 128; ResNet-56's 8x8 heads, alternating in one process).
constexpr int64_t kFused64Batch = 8;

}  // namespace

at::Tensor HeadConvPool(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, int64_t stride, int64_t padding, float alpha, int64_t k) {
  const auto isFloat = [](const at::Tensor& t) { return t.scalar_type() == at::kFloat && t.device().is_cpu(); };
  const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b && b->requires_grad()));
  if (!HasAvx512() || grad || stride != 1 || padding != 1 || x.dim() != 4 || w.dim() != 4 || !isFloat(x) || !isFloat(w) || (w.size(0) != 16 && w.size(0) != 32 && !(w.size(0) == 64 && x.size(0) <= kFused64Batch)) ||
      w.size(2) != 3 || w.size(3) != 3 || w.size(1) != x.size(1) || x.size(1) % 16 != 0 || x.size(0) < 1)
    return {};
  if (b && (b->dim() != 1 || b->size(0) != w.size(0) || !isFloat(*b))) return {};
  const HeadConvShape s{x.size(0), x.size(2), x.size(3), x.size(1), w.size(0), k};
  if (k < 1 || s.H < k || s.W < k) return {};
  const auto xc = x.contiguous(at::MemoryFormat::ChannelsLast);
  const auto bc = b ? b->contiguous() : at::Tensor();
  auto out = at::empty({s.N, s.O, s.H / k, s.W / k}, x.options().memory_format(at::MemoryFormat::Contiguous));
  const float* packed = Conv16Weights(w);
  const float *xp = xc.data_ptr<float>(), *bp = b ? bc.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  // One window row of one sample a task: at one image the 4 rows of the grid
  // split over both threads.
  at::parallel_for(0, s.N * (s.H / k), 1, [&](int64_t begin, int64_t end) {
    float* scratch = conv16::ThreadScratch(Scratch(s));
    // Two output channel blocks a band (8 pixels) for 32 and 64 channels, else one (16).
    // The windows of ResNet-56's heads (32x32 maps in windows of 8, 16x16 in 4) fold in registers.
    const int64_t cols = Cols(s);
    if (s.C == 16 && s.O == 16 && s.k == 8 && cols % 16 == 0) return Units<16, 16, 1, 8>(xp, packed, bp, alpha, op, scratch, s, begin, end);
    if (s.C == 32 && s.O == 32 && s.k == 4 && cols % 8 == 0) return Units<32, 8, 2, 4>(xp, packed, bp, alpha, op, scratch, s, begin, end);
    if (s.C == 64 && s.O == 64 && s.k == 2 && cols % 8 == 0) return Units<64, 8, 2, 2>(xp, packed, bp, alpha, op, scratch, s, begin, end);
    if (s.C == 16 && s.O == 16) return Units<16, 16, 1, 0>(xp, packed, bp, alpha, op, scratch, s, begin, end);
    if (s.C == 32 && s.O == 32) return Units<32, 8, 2, 0>(xp, packed, bp, alpha, op, scratch, s, begin, end);
    if (s.O == 32) return Units<0, 8, 2, 0>(xp, packed, bp, alpha, op, scratch, s, begin, end);
    Units<0, 16, 1, 0>(xp, packed, bp, alpha, op, scratch, s, begin, end);
  });
  return out;
}

}  // namespace ztw
