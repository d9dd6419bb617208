#include "head_conv.h"
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>
#include "lru.h"

namespace ztw {

namespace {

struct HeadConvShape {
  int64_t N, H, W, C, O;  // input [N, H, W, C] channels-last, O output channels
  int64_t k;              // pooling window: an (H / k) x (W / k) grid
};

// Columns computed: the pooling grid's, (W / k) * k (floor pooling drops the rest).
int64_t Cols(const HeadConvShape& s) { return s.W / s.k * s.k; }
// Floats of one row of the zero-padded input copy: Cols + 2 pixels.
int64_t PaddedRow(const HeadConvShape& s) { return (Cols(s) + 2) * s.C; }

// The accumulators as named variables: GCC left an array of them on the
// stack (an FMA with a load and a store each).
#define ZTW_REP24(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)

// P pixels x B blocks of 16 output channels in registers (accumulator q is
// pixel q / B, block q % B): acc = bias + sum over (kh, kw, c) of
// in[kh][p + kw][c] * w[kh][kw][c], in that order, then relu(acc) folded
// into the pooling windows' max and sum (row by row, left to right; a NaN
// stays NaN through the sum). `in` points at the padded copy's pixel
// (row r, x0), the window's top-left; w at the first block's [3][3][C][16]
// (a block's weights are 9 C 16 floats); win[p] the window of pixel p (a
// division per pixel cost a fifth of the time); mx and sum hold each
// window's O floats at a stride of `stride`, the first block's first. CC is
// C when known at compile time (then every offset is an immediate), else 0.
template <int CC, int P, int B>
__attribute__((target("avx512f"))) static inline void Band(const float* in, int64_t row, const float* w, int64_t Cr, const __m512 (&bias)[B], const int32_t* win,
                                                           float* mx, float* sum, int64_t stride) {
  static_assert(P * B <= 24, "24 accumulators");
  const int64_t C = CC ? CC : Cr;
#define ZTW_DECL(q) __m512 a##q = bias[q % B];
  ZTW_REP24(ZTW_DECL)
#undef ZTW_DECL
  for (int kh = 0; kh < 3; kh++)
    for (int kw = 0; kw < 3; kw++) {
      const float* src = in + kh * row + kw * C;
      const float* wk = w + (kh * 3 + kw) * C * 16;
      for (int64_t c = 0; c < C; c++, src++, wk += 16) {
        __m512 wv[B];
        for (int b = 0; b < B; b++) wv[b] = _mm512_loadu_ps(wk + b * 9 * C * 16);
#define ZTW_FMA(q) \
  if constexpr (q < P * B) a##q = _mm512_fmadd_ps(_mm512_set1_ps(src[(q / B) * C]), wv[q % B], a##q);
        ZTW_REP24(ZTW_FMA)
#undef ZTW_FMA
      }
    }
  const __m512 zero = _mm512_setzero_ps();
#define ZTW_FOLD(q)                                                                                \
  if constexpr (q < P * B) {                                                                       \
    /* max(v, 0) with a NaN kept: v where v is not below 0 */                                      \
    const __m512 v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a##q, zero, _CMP_LT_OQ), a##q, zero); \
    float* m = mx + win[q / B] * stride + (q % B) * 16;                                            \
    float* s = sum + win[q / B] * stride + (q % B) * 16;                                           \
    const __m512 old = _mm512_loadu_ps(m);                                                         \
    _mm512_storeu_ps(m, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(old, v, _CMP_LT_OQ), old, v));     \
    _mm512_storeu_ps(s, _mm512_add_ps(_mm512_loadu_ps(s), v));                                     \
  }
  ZTW_REP24(ZTW_FOLD)
#undef ZTW_FOLD
}

// One output row of the unit, every column, B channel blocks: bands of P
// pixels, then of 8, 4, 2 and 1 for the rest.
template <int CC, int P, int B>
__attribute__((target("avx512f"))) static inline void Row(const float* pad, int64_t row, const float* w, int64_t C, const __m512 (&bias)[B], int64_t cols,
                                                          const int32_t* win, float* mx, float* sum, int64_t stride) {
  int64_t x0 = 0;
  for (; x0 + P <= cols; x0 += P) Band<CC, P, B>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum, stride);
  if constexpr (P > 8)
    if (x0 + 8 <= cols) Band<CC, 8, B>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum, stride), x0 += 8;
  if constexpr (P > 4)
    if (x0 + 4 <= cols) Band<CC, 4, B>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum, stride), x0 += 4;
  if constexpr (P > 2)
    if (x0 + 2 <= cols) Band<CC, 2, B>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum, stride), x0 += 2;
  if (x0 < cols) Band<CC, 1, B>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum, stride);
}

// Every row of the unit for the channel blocks [b0, b0 + B).
template <int CC, int P, int B>
__attribute__((target("avx512f"))) static inline void Blocks(const float* pad, const float* packed, const float* bias, int64_t b0, float* mx, float* sum,
                                                             const int32_t* win, const HeadConvShape& s) {
  const int64_t row = PaddedRow(s), cols = Cols(s);
  __m512 bv[B];
  for (int b = 0; b < B; b++) bv[b] = bias ? _mm512_loadu_ps(bias + (b0 + b) * 16) : _mm512_setzero_ps();
  for (int64_t r = 0; r < s.k; r++) Row<CC, P, B>(pad + r * row, row, packed + b0 * 9 * s.C * 16, s.C, bv, cols, win, mx + b0 * 16, sum + b0 * 16, s.O);
}

// Rows y0 - 1 .. y0 + k of sample xn, columns -1 .. Cols, into `pad`: zeros
// where the convolution's padding (or an unused map edge) is.
void CopyPadded(const float* xn, float* pad, int64_t y0, const HeadConvShape& s) {
  const int64_t row = PaddedRow(s), have = std::min(s.W, Cols(s) + 1);  // input columns the copy holds
  for (int64_t r = 0; r < s.k + 2; r++) {
    float* to = pad + r * row;
    const int64_t y = y0 - 1 + r;
    if (y < 0 || y >= s.H) {
      std::memset(to, 0, sizeof(float) * row);
      continue;
    }
    std::memset(to, 0, sizeof(float) * s.C);
    std::memcpy(to + s.C, xn + y * s.W * s.C, sizeof(float) * have * s.C);
    std::memset(to + (1 + have) * s.C, 0, sizeof(float) * (row - (1 + have) * s.C));
  }
}

template <int CC>
__attribute__((target("avx512f"))) void Units(const float* x, const float* packed, const float* bias, float alpha, float* pooled, float* scratch, const HeadConvShape& s, int64_t begin, int64_t end) {
  const int64_t oh = s.H / s.k, ow = s.W / s.k, cols = Cols(s), row = PaddedRow(s), blocks = s.O / 16;
  const float inv = 1.0f / static_cast<float>(s.k * s.k);
  float* pad = scratch;
  float* mx = scratch + (s.k + 2) * row;  // [ow][blocks][16]
  float* sum = mx + ow * s.O;
  int32_t* win = reinterpret_cast<int32_t*>(sum + ow * s.O);  // [cols]
  for (int64_t x = 0; x < cols; x++) win[x] = static_cast<int32_t>(x / s.k);
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / oh, i = t % oh;
    CopyPadded(x + n * s.H * s.W * s.C, pad, i * s.k, s);
    std::memset(mx, 0, sizeof(float) * 2 * ow * s.O);  // after a ReLU every value is >= 0
    // Several channel blocks per band where there are: each broadcast input
    // value then feeds B products (64 channels at batch 128: 12.6 us a
    // sample in blocks of four, 16.6 one at a time; bands of 4 pixels, which
    // divide a row of 8, where 6 left a band of 2 at 16.1).
    int64_t b = 0;
    for (; b + 4 <= blocks; b += 4) Blocks<CC, 4, 4>(pad, packed, bias, b, mx, sum, win, s);
    for (; b + 2 <= blocks; b += 2) Blocks<CC, 8, 2>(pad, packed, bias, b, mx, sum, win, s);
    for (; b < blocks; b++) Blocks<CC, 16, 1>(pad, packed, bias, b, mx, sum, win, s);
    // pooled[n][o][i][j], o = 16 b + lane
    for (int64_t j = 0; j < ow; j++)
      for (int64_t b = 0; b < blocks; b++) {
        // avg + alpha * (max - avg), as the separate pooling
        const __m512 av = _mm512_mul_ps(_mm512_loadu_ps(sum + j * s.O + b * 16), _mm512_set1_ps(inv));
        const __m512 mix = _mm512_add_ps(av, _mm512_mul_ps(_mm512_set1_ps(alpha), _mm512_sub_ps(_mm512_loadu_ps(mx + j * s.O + b * 16), av)));
        alignas(64) float lanes[16];
        _mm512_store_ps(lanes, mix);
        for (int u = 0; u < 16; u++) pooled[((n * s.O + b * 16 + u) * oh + i) * ow + j] = lanes[u];
      }
  }
}

bool Serves(const HeadConvShape& s) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");  // the loop is written for it; elsewhere oneDNN and a pooling pass serve
  return avx512 && s.N > 0 && s.C > 0 && s.C % 16 == 0 && s.O > 0 && s.O % 16 == 0 && s.k >= 1 && s.H >= s.k && s.W >= s.k;
}

// OIHW weights [O, C, 3, 3] in the loop's layout [O / 16][3][3][C][16].
void Pack(const float* w, float* packed, int64_t O, int64_t C) {
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t t = 0; t < 9; t++) packed[(((o / 16) * 9 + t) * C + c) * 16 + o % 16] = w[(o * C + c) * 9 + t];
}

// Floats of scratch one thread needs.
int64_t Scratch(const HeadConvShape& s) { return (s.k + 2) * PaddedRow(s) + 2 * (s.W / s.k) * s.O + Cols(s); }

// Units [begin, end) of the N * (H / k) window rows: for window row i of
// sample n, pooled[n][o][i][j] over every window (i, j) of that row.
void PoolUnits(const float* x, const float* packed, const float* bias, float alpha, float* pooled, float* scratch, const HeadConvShape& s, int64_t begin,
               int64_t end) {
  switch (s.C) {
    case 16: return Units<16>(x, packed, bias, alpha, pooled, scratch, s, begin, end);
    case 32: return Units<32>(x, packed, bias, alpha, pooled, scratch, s, begin, end);
    case 64: return Units<64>(x, packed, bias, alpha, pooled, scratch, s, begin, end);
    default: return Units<0>(x, packed, bias, alpha, pooled, scratch, s, begin, end);
  }
}


// Packed weights per weight tensor, as dnnl_conv.cc keeps its reorders: the
// TensorImpl's address is the key while a weak reference keeps it from being
// reused, and the version and data pointer catch in-place updates.
struct PackedWeights {
  c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> owner;
  int64_t version;
  const void* data;
  std::vector<float> packed;
};
struct PackCache {
  std::mutex mutex;
  Lru<const c10::TensorImpl*, PackedWeights> entries{512};
};
PackCache& ThePackCache() {
  static PackCache c;
  return c;
}

const float* PackedFor(PackCache& cache, const at::Tensor& w) {
  const auto* impl = w.unsafeGetTensorImpl();
  const auto version = static_cast<int64_t>(w._version());
  auto* entry = cache.entries.Find(impl);
  if (!entry || entry->owner.expired() || entry->version != version || entry->data != w.data_ptr()) {
    const auto plain = w.contiguous();
    std::vector<float> packed(static_cast<size_t>(w.numel()));
    Pack(plain.data_ptr<float>(), packed.data(), w.size(0), w.size(1));
    entry = &cache.entries.Insert(impl, PackedWeights{c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(w.getIntrusivePtr()), version, w.data_ptr(), std::move(packed)});
  }
  return entry->packed.data();
}

}  // namespace

at::Tensor HeadConvPool(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, int64_t stride, int64_t padding, float alpha, int64_t k) {
  const auto isFloat = [](const at::Tensor& t) { return t.scalar_type() == at::kFloat && t.device().is_cpu(); };
  const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b && b->requires_grad()));
  if (grad || stride != 1 || padding != 1 || x.dim() != 4 || w.dim() != 4 || !isFloat(x) || !isFloat(w) || w.size(2) != 3 || w.size(3) != 3 ||
      w.size(1) != x.size(1))
    return {};
  if (b && (b->dim() != 1 || b->size(0) != w.size(0) || !isFloat(*b))) return {};
  const HeadConvShape s{x.size(0), x.size(2), x.size(3), x.size(1), w.size(0), k};
  if (!Serves(s)) return {};
  const auto xc = x.contiguous(at::MemoryFormat::ChannelsLast);
  const auto bc = b ? b->contiguous() : at::Tensor();
  auto out = at::empty({s.N, s.O, s.H / k, s.W / k}, x.options().memory_format(at::MemoryFormat::Contiguous));
  auto& cache = ThePackCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  const float* packed = PackedFor(cache, w);
  const float *xp = xc.data_ptr<float>(), *bp = b ? bc.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  // One window row of one sample a task: at one image the 4 rows of the grid
  // split over both threads.
  at::parallel_for(0, s.N * (s.H / k), 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(std::max<int64_t>(static_cast<int64_t>(scratch.size()), Scratch(s))));
    PoolUnits(xp, packed, bp, alpha, op, scratch.data(), s, begin, end);
  });
  return out;
}

void ClearHeadConvCache() {
  auto& cache = ThePackCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.entries.Clear();
}

}  // namespace ztw
