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
  int64_t N, H, W, C, O;  // input [N, H, W, C] channels-last, O output channels (16: one block)
  int64_t k;              // pooling window: an (H / k) x (W / k) grid
};

// Columns computed: the pooling grid's, (W / k) * k (floor pooling drops the rest).
int64_t Cols(const HeadConvShape& s) { return s.W / s.k * s.k; }
// Floats of one row of the zero-padded input copy: Cols + 2 pixels.
int64_t PaddedRow(const HeadConvShape& s) { return (Cols(s) + 2) * s.C; }

// The accumulators as named variables: GCC left an array of them on the
// stack (an FMA with a load and a store each). X(q, q - 1, q - 2), with a0
// standing in for the names below 0 (their uses are compiled out).
#define ZTW_ACC16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define ZTW_INPUTS18(X)                                                                                                         \
  X(0, a0, a0) X(1, a0, a0) X(2, a1, a0) X(3, a2, a1) X(4, a3, a2) X(5, a4, a3) X(6, a5, a4) X(7, a6, a5) X(8, a7, a6) X(9, a8, a7) \
      X(10, a9, a8) X(11, a10, a9) X(12, a11, a10) X(13, a12, a11) X(14, a13, a12) X(15, a14, a13) X(16, a15, a14) X(17, a15, a15)

// P output pixels of one row, 16 channels, in registers: acc = bias + sum
// over (kh, c, kw) of in[kh][p + kw][c] * w[kh][kw][c], then relu(acc)
// folded into the pooling windows' max and sum (row by row, left to right;
// a NaN stays NaN through the sum). Each input value is broadcast once for
// the three kernel columns it meets (outputs q, q - 1 and q - 2): one
// broadcast per product made the loop 20% slower. `in` points at the padded
// copy's pixel (row r, x0), the window's top-left; w at [3][3][C][16];
// win[p] the window of pixel p (a division per pixel cost a fifth of the
// time); mx and sum hold 16 floats per window. CC is C when known at
// compile time (every offset is then an immediate), else 0.
template <int CC, int P>
__attribute__((target("avx512f"))) static inline void Band(const float* in, int64_t row, const float* w, int64_t Cr, __m512 bias, const int32_t* win, float* mx,
                                                           float* sum) {
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
  const __m512 zero = _mm512_setzero_ps();
#define ZTW_FOLD(q)                                                                                \
  if constexpr (q < P) {                                                                           \
    const __m512 v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a##q, zero, _CMP_LT_OQ), a##q, zero); \
    float* m = mx + win[q] * 16;                                                                   \
    float* s = sum + win[q] * 16;                                                                  \
    const __m512 old = _mm512_loadu_ps(m);                                                         \
    _mm512_storeu_ps(m, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(old, v, _CMP_LT_OQ), old, v));     \
    _mm512_storeu_ps(s, _mm512_add_ps(_mm512_loadu_ps(s), v));                                     \
  }
  ZTW_ACC16(ZTW_FOLD)
#undef ZTW_FOLD
}

// One output row, every column: bands of 16 pixels, then 8, 4, 2 and 1.
template <int CC>
__attribute__((target("avx512f"))) static inline void Row(const float* pad, int64_t row, const float* w, int64_t C, __m512 bias, int64_t cols, const int32_t* win,
                                                          float* mx, float* sum) {
  int64_t x0 = 0;
  for (; x0 + 16 <= cols; x0 += 16) Band<CC, 16>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum);
  if (x0 + 8 <= cols) Band<CC, 8>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum), x0 += 8;
  if (x0 + 4 <= cols) Band<CC, 4>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum), x0 += 4;
  if (x0 + 2 <= cols) Band<CC, 2>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum), x0 += 2;
  if (x0 < cols) Band<CC, 1>(pad + x0 * C, row, w, C, bias, win + x0, mx, sum);
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
__attribute__((target("avx512f"))) void Units(const float* x, const float* packed, const float* bias, float alpha, float* pooled, float* scratch,
                                              const HeadConvShape& s, int64_t begin, int64_t end) {
  const int64_t oh = s.H / s.k, ow = s.W / s.k, cols = Cols(s), row = PaddedRow(s);
  const float inv = 1.0f / static_cast<float>(s.k * s.k);
  float* pad = scratch;
  float* mx = scratch + (s.k + 2) * row;  // [ow][16]
  float* sum = mx + ow * 16;
  int32_t* win = reinterpret_cast<int32_t*>(sum + ow * 16);  // [cols]
  for (int64_t x = 0; x < cols; x++) win[x] = static_cast<int32_t>(x / s.k);
  const __m512 bv = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / oh, i = t % oh;
    CopyPadded(x + n * s.H * s.W * s.C, pad, i * s.k, s);
    std::memset(mx, 0, sizeof(float) * 2 * ow * 16);  // after a ReLU every value is >= 0
    for (int64_t r = 0; r < s.k; r++) Row<CC>(pad + r * row, row, packed, s.C, bv, cols, win, mx, sum);
    // pooled[n][o][i][j]: avg + alpha * (max - avg), as the separate pooling
    for (int64_t j = 0; j < ow; j++) {
      const __m512 av = _mm512_mul_ps(_mm512_loadu_ps(sum + j * 16), _mm512_set1_ps(inv));
      const __m512 mix = _mm512_add_ps(av, _mm512_mul_ps(_mm512_set1_ps(alpha), _mm512_sub_ps(_mm512_loadu_ps(mx + j * 16), av)));
      alignas(64) float lanes[16];
      _mm512_store_ps(lanes, mix);
      for (int u = 0; u < 16; u++) pooled[((n * 16 + u) * oh + i) * ow + j] = lanes[u];
    }
  }
}

bool Serves(const HeadConvShape& s) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");  // the loop is written for it; elsewhere oneDNN and a pooling pass serve
  return avx512 && s.N > 0 && s.C > 0 && s.C % 16 == 0 && s.O == 16 && s.k >= 1 && s.H >= s.k && s.W >= s.k;
}

// OIHW weights [16, C, 3, 3] in the loop's layout [3][3][C][16].
void Pack(const float* w, float* packed, int64_t C) {
  for (int64_t o = 0; o < 16; o++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t t = 0; t < 9; t++) packed[(t * C + c) * 16 + o] = w[(o * C + c) * 9 + t];
}

// Floats of scratch one thread needs.
int64_t Scratch(const HeadConvShape& s) { return (s.k + 2) * PaddedRow(s) + 2 * (s.W / s.k) * 16 + Cols(s); }

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
    Pack(plain.data_ptr<float>(), packed.data(), w.size(1));
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
