#include "conv16.h"
#include <ATen/MemoryOverlap.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/variable.h>
#include "weight_cache.h"
#include "args.h"

namespace ztw {

bool HasAvx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

float* conv16::ThreadScratch(int64_t floats) {
  thread_local std::vector<float> scratch;
  if (static_cast<int64_t>(scratch.size()) < floats) scratch.resize(static_cast<size_t>(floats));
  return scratch.data();
}

namespace {

// OIHW [O, C, 3, 3] in the loop's layout [O / 16][3][3][C][16].
void Pack(const float* w, float* packed, int64_t O, int64_t C) {
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t t = 0; t < 9; t++) packed[(((o / 16) * 9 + t) * C + c) * 16 + o % 16] = w[(o * C + c) * 9 + t];
}

// Packed weights per weight tensor, as dnnl_conv.cc keeps its reorders.
DerivedWeights& ThePackCache() {
  static DerivedWeights c(9, Pack);
  return c;
}

// Output rows a task copies and computes at a time: the padded copy of 16
// channels x 34 columns x 10 rows stays in L1.
constexpr int64_t kRowsAtOnce = 8;

#pragma GCC push_options
#pragma GCC target("avx512f")

// Where a gathered convolution reads: sample n of x is x's sample
// inRows[n] (else n), ReLU'd when reluIn; the addend's likewise.
struct Gather {
  const int32_t *inRows = nullptr, *addRows = nullptr;
  bool reluIn = false, reluAdd = false;
};

// Output rows [begin, end) of the N * H rows: relu?(acc + add?) stored at
// each pixel, 16 floats, channels-last.
template <int CC, bool Add, bool Relu>
void StoreRows(const float* x, const float* packed, const float* bias, const float* add, float* out, int64_t H, int64_t W, int64_t C, int64_t begin,
               int64_t end, const Gather& g) {
  const int64_t row = (W + 2) * C;
  const __m512 bv[1] = {bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps()}, zero = _mm512_setzero_ps();
  for (int64_t t = begin; t < end;) {
    const int64_t n = t / H, y0 = t % H, rows = std::min({end - t, H - y0, kRowsAtOnce});
    float* pad = conv16::ThreadScratch((rows + 2) * row);
    conv16::CopyPadded(x + (g.inRows ? g.inRows[n] : n) * H * W * C, H, W, C, y0, rows, W, pad, g.reluIn);
    for (int64_t r = 0; r < rows; r++) {
      const int64_t at = (t + r) * W * 16;  // the output row's first float
      const float* addRow = Add ? add + ((g.addRows ? g.addRows[n] : n) * H + y0 + r) * W * 16 : nullptr;
      auto store = [&](int64_t px, int, __m512 v) {
        if constexpr (Add) {
          __m512 a = _mm512_loadu_ps(addRow + px * 16);
          if (g.reluAdd) a = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, zero, _CMP_LT_OQ), a, zero);  // a NaN stays NaN
          v = _mm512_add_ps(v, a);
        }
        if constexpr (Relu) v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, zero);  // a NaN stays NaN
        _mm512_storeu_ps(out + at + px * 16, v);
      };
      conv16::Row<CC, 16, 1>(pad + r * row, row, packed, C, bv, W, store);
    }
    t += rows;
  }
}

#pragma GCC pop_options

template <bool Add, bool Relu>
void StoreRowsFor(int64_t C, const float* x, const float* packed, const float* bias, const float* add, float* out, int64_t H, int64_t W, int64_t begin,
                  int64_t end, const Gather& g) {
  if (C == 16) return StoreRows<16, Add, Relu>(x, packed, bias, add, out, H, W, C, begin, end, g);
  StoreRows<0, Add, Relu>(x, packed, bias, add, out, H, W, C, begin, end, g);
}

// The int32 row indices of a gathered input, each below `rows` (ArgError otherwise).
const int32_t* RowIndices(const at::Tensor& idx, int64_t rows, const char* what) {
  if (idx.scalar_type() != at::kInt || idx.dim() != 1 || !idx.is_contiguous() || !idx.device().is_cpu()) throw ArgError(std::string("conv2d: ") + what + " must be a dense int32 vector");
  const int32_t* p = idx.data_ptr<int32_t>();
  for (int64_t i = 0; i < idx.size(0); i++)
    if (p[i] < 0 || p[i] >= rows) throw ArgError(std::string("conv2d: ") + what + " " + std::to_string(p[i]) + " is out of range for " + std::to_string(rows) + " rows");
  return p;
}

}  // namespace

const float* Conv16Weights(const at::Tensor& w) { return ThePackCache().For(w); }

void ClearConv16Cache() { ThePackCache().Clear(); }

at::Tensor Conv16(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride, at::IntArrayRef padding,
                  at::IntArrayRef dilation, int64_t groups, const ConvFusion& fusion) {
  // The weight's shape first: every other convolution leaves at once, and
  // Conv2d's own DnnlConvServes check is then the only one it pays.
  if (!HasAvx512() || groups != 1 || w.dim() != 4 || w.size(0) != 16 || w.size(2) != 3 || w.size(3) != 3 || !DnnlConvServes(x, w, groups)) return {};
  const auto ones = [](at::IntArrayRef v, int64_t want) { return v.size() == 2 && v[0] == want && v[1] == want; };
  if (!ones(stride, 1) || !ones(padding, 1) || !ones(dilation, 1) || x.size(1) % 16 != 0) return {};
  // Channels-last in, channels-last out, as DnnlConv would write for this input.
  if (!x.is_contiguous(at::MemoryFormat::ChannelsLast)) return {};
  if (b && (b->dim() != 1 || b->size(0) != 16 || b->scalar_type() != at::kFloat)) return {};
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t N = fusion.inRows ? fusion.inRows->size(0) : x.size(0);  // the output's samples
  const auto cl = at::MemoryFormat::ChannelsLast;
  at::Tensor add;
  if (fusion.add) {
    const int64_t addN = fusion.addRows ? fusion.add->size(0) : N;
    if (fusion.add->sizes() != at::IntArrayRef({addN, 16, H, W}) || fusion.add->scalar_type() != at::kFloat || !fusion.add->device().is_cpu()) return {};  // the caller words the error
    if (fusion.addRows && fusion.addRows->size(0) != N) return {};
    add = fusion.add->contiguous(cl);
  }
  Gather g;
  g.inRows = fusion.inRows ? RowIndices(*fusion.inRows, x.size(0), "inRows") : nullptr;
  g.addRows = fusion.addRows ? RowIndices(*fusion.addRows, add.size(0), "addRows") : nullptr;
  g.reluIn = fusion.reluIn;
  g.reluAdd = fusion.reluAdd;
  // Into the addend when given up, dense and apart from the input (as DnnlConv), and not gathered.
  const bool into = fusion.add && fusion.accumulate && !fusion.addRows && add.is_same(*fusion.add) && at::get_overlap_status(add, x) == at::MemOverlapStatus::No;
  auto out = into ? add : at::empty({N, 16, H, W}, x.options().memory_format(cl));
  const auto bias = b ? b->contiguous() : at::Tensor();
  const float* packed = Conv16Weights(w);
  const float *xp = x.data_ptr<float>(), *bp = b ? bias.data_ptr<float>() : nullptr, *ap = fusion.add ? add.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  // Rows per task: at one 32x32 image two tasks of 16 rows, one a thread.
  at::parallel_for(0, N * H, 4, [&](int64_t begin, int64_t end) {
    if (fusion.add && fusion.relu) return StoreRowsFor<true, true>(C, xp, packed, bp, ap, op, H, W, begin, end, g);
    if (fusion.add) return StoreRowsFor<true, false>(C, xp, packed, bp, ap, op, H, W, begin, end, g);
    if (fusion.relu) return StoreRowsFor<false, true>(C, xp, packed, bp, ap, op, H, W, begin, end, g);
    StoreRowsFor<false, false>(C, xp, packed, bp, ap, op, H, W, begin, end, g);
  });
  if (into) torch::autograd::impl::bump_version(out);
  return out;
}

}  // namespace ztw
