// Early-exit inference: one entry per step of the exit loop. At batch 1 the
// ~15 small ops of an internal classifier cost more in JS-to-native
// crossings (~4 us each) than the classifier's own convolution, so the
// runtime runs a whole head in one call: the computation ICHead.forward
// composes in TypeScript, with the ReLU and both poolings in one pass.
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <vector>
#include <torch/csrc/autograd/variable.h>
#include "op.h"
#include "nn.h"
#include "kernels.h"
#include "head_conv.h"
#include "exit_book.h"

using namespace ztw;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // see kernels.h

// The pooled value of one window for one channel: avg + alpha * (max - avg).
static inline float Mix(float mx, float sum, float inv, float a) {
  const float av = sum * inv;
  return av + a * (mx - av);
}

// SDN pooling of relu(h) for the windows [begin, end) of a channels-last
// map, sixteen channels per step in registers. Built for AVX-512, AVX2 and
// the baseline, chosen at load time (the addon is built without -march, and
// the baseline's SSE made this loop 3x slower: 4.2 against 1.3 us for a
// 16-channel 32x32 map). A NaN stays NaN through the sum.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void ReluSdnPoolWindows(const float* xp, float* op, int64_t begin, int64_t end, int64_t C, int64_t H, int64_t W, int64_t k, float a) {
  const int64_t oh = H / k, ow = W / k;
  const float inv = 1.0f / static_cast<float>(k * k);
  const Float16 zero = {};
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / oh, i = t % oh;
    for (int64_t j = 0; j < ow; j++) {
      const float* window = xp + ((n * H + i * k) * W + j * k) * C;
      float* out = op + (n * C * oh + i) * ow + j;  // channel c at out[c * oh * ow]
      int64_t c0 = 0;
      for (; c0 + 16 <= C; c0 += 16) {
        Float16 mx = zero, sum = zero;  // after a ReLU every value is >= 0
        for (int64_t dy = 0; dy < k; dy++) {
          const float* px = window + dy * W * C + c0;
          for (int64_t dx = 0; dx < k; dx++, px += C) {
            Float16 v = Load16(px);
            v = v < zero ? zero : v;
            mx = mx < v ? v : mx;
            sum += v;
          }
        }
        for (int u = 0; u < 16; u++) out[(c0 + u) * oh * ow] = Mix(mx[u], sum[u], inv, a);
      }
      for (; c0 < C; c0++) {
        float mx = 0, sum = 0;
        for (int64_t dy = 0; dy < k; dy++)
          for (int64_t dx = 0; dx < k; dx++) {
            float v = window[(dy * W + dx) * C + c0];
            v = v < 0.0f ? 0.0f : v;
            mx = mx < v ? v : mx;
            sum += v;
          }
        out[c0 * oh * ow] = Mix(mx, sum, inv, a);
      }
    }
  }
}

// SDN pooling of relu(h) in one pass over the map: per k x k window,
// avg + alpha * (max - avg), written as contiguous NCHW [N, C, H/k, W/k]
// (what the flatten before the classifier wants). The six ATen ops it
// replaces, each a pass over the map, took ~25 us of a ~80 us head at batch 1.
// Heads the fused loop (head_conv.h) does not serve pool here.
static at::Tensor ReluSdnPool(const at::Tensor& h, float a, int64_t k) {
  if (h.dim() != 4 || h.scalar_type() != at::kFloat || !h.device().is_cpu()) throw ArgError("icHead: pooled features must be float32 [N, C, H, W] on the CPU");
  if (k < 1 || h.size(2) < k || h.size(3) < k) throw ArgError("icHead: pool kernel " + std::to_string(k) + " does not fit the map");
  const int64_t N = h.size(0), C = h.size(1), H = h.size(2), W = h.size(3), oh = H / k, ow = W / k;
  const auto x = h.contiguous(at::MemoryFormat::ChannelsLast);  // channels innermost
  auto out = at::empty({N, C, oh, ow}, h.options());
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // Threads only for work worth a fork: ~32K values per task (at batch 1 the
  // whole map is less, and two threads were slower than one).
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, ow * k * k * C));
  at::parallel_for(0, N * oh, grain, [&](int64_t begin, int64_t end) { ReluSdnPoolWindows(xp, op, begin, end, C, H, W, k, a); });
  return out;
}

// Rows [begin, end) of logits = [x | prev] W^T + b and their log-softmax
// (P = 0: no prev), built per target as the pooling above.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void LinearLogSoftmaxRows(const float* xp, const float* pp, const float* wp, const float* bp, float* lo, float* lq, int64_t begin, int64_t end,
                                 int64_t F, int64_t P, int64_t K) {
  for (int64_t n = begin; n < end; n++) {
    float* row = lo + n * K;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t k = 0; k < K; k++) {
      const float* wk = wp + k * (F + P);
      row[k] = Dot(xp + n * F, wk, F) + (P ? Dot(pp + n * P, wk + F, P) : 0.0f) + (bp ? bp[k] : 0.0f);
      mx = std::max(mx, row[k]);
    }
    float sum = 0;
    for (int64_t k = 0; k < K; k++) sum += std::exp(row[k] - mx);
    const float lse = mx + std::log(sum);
    for (int64_t k = 0; k < K; k++) lq[n * K + k] = row[k] - lse;
  }
}

#pragma GCC diagnostic pop

// The classifier's tail: [features | prev] W^T + b and its log-softmax, row
// by row, without the concatenated copy, the linear and the log-softmax as
// three ATen ops (~12 us of a ~35 us head at batch 1). The log-probabilities
// go into `into` when given (N * K floats), else into a tensor of their own.
// Returns nothing (the caller composes the ATen ops) when the shapes do not
// fit, so that libtorch words the error.
struct Tail {
  at::Tensor logits, logProbs;  // logProbs undefined when written into the caller's memory
};
static c10::optional<Tail> ClassifierTail(const at::Tensor& features, const c10::optional<at::Tensor>& prev, const at::Tensor& w, const c10::optional<at::Tensor>& b,
                                          float* into) {
  const int64_t N = features.size(0), F = features.numel() / std::max<int64_t>(1, N), P = prev ? prev->size(-1) : 0;
  const auto isFloat = [](const at::Tensor& t) { return t.scalar_type() == at::kFloat && t.device().is_cpu(); };
  if (!features.is_contiguous() || !isFloat(features) || w.dim() != 2 || !isFloat(w) || w.size(1) != F + P) return c10::nullopt;
  if (prev && (prev->dim() != 2 || prev->size(0) != N || !isFloat(*prev))) return c10::nullopt;
  const int64_t K = w.size(0);
  if (b && (b->dim() != 1 || b->size(0) != K || !isFloat(*b))) return c10::nullopt;
  const auto wc = w.contiguous();
  const auto pc = prev ? prev->contiguous() : at::Tensor();
  const auto bc = b ? b->contiguous() : at::Tensor();
  Tail out{at::empty({N, K}, features.options()), into ? at::Tensor() : at::empty({N, K}, features.options())};
  const float *xp = features.data_ptr<float>(), *wp = wc.data_ptr<float>(), *pp = prev ? pc.data_ptr<float>() : nullptr, *bp = b ? bc.data_ptr<float>() : nullptr;
  float *lo = out.logits.data_ptr<float>(), *lq = into ? into : out.logProbs.data_ptr<float>();
  at::parallel_for(0, N, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, K * (F + P))),
                   [&](int64_t begin, int64_t end) { LinearLogSoftmaxRows(xp, pp, wp, bp, lo, lq, begin, end, F, P, K); });
  return out;
}

// Rows of src (each a contiguous block of `row` floats) to the rows of dst in
// order, row rows[i] to row i, with a ReLU when asked: one pass, where
// index_select then relu_ were two over the survivors' maps. A NaN stays
// NaN, as in relu(). Each thread copies whole rows (slices of every row
// were 13% slower: 342 against 301 us for 120 of 128 16x32x32 maps).
static void MoveRows(const float* src, float* dst, const int64_t* rows, int64_t n, int64_t row, bool relu) {
  at::parallel_for(0, n, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row)), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; i++) {
      float* to = dst + i * row;
      const float* from = src + rows[i] * row;
      if (relu)
        ReluCopy(from, to, row);
      else
        std::memcpy(to, from, sizeof(float) * row);
    }
  });
}

// The rows index as int64, every entry checked against x's N rows.
static at::Tensor CheckedRows(const at::Tensor& rows, int64_t N, const char* op) {
  auto idx = rows.to(at::kLong).contiguous();
  const int64_t* ip = idx.data_ptr<int64_t>();
  for (int64_t i = 0; i < idx.size(0); i++)
    if (ip[i] < 0 || ip[i] >= N) throw ArgError(std::string(op) + ": row " + std::to_string(ip[i]) + " is out of range for " + std::to_string(N) + " rows");
  return idx;
}

// Whether takeRows' fast loop serves x and rows: float32 dense in its memory
// format, no gradient, an int32 or int64 vector index.
static bool RowsLoopServes(const at::Tensor& x, const at::Tensor& rows) {
  const bool grad = at::GradMode::is_enabled() && x.requires_grad();
  return !grad && x.dim() >= 1 && x.scalar_type() == at::kFloat && x.device().is_cpu() && x.is_contiguous(DenseFormat(x)) && rows.dim() == 1 &&
         (rows.scalar_type() == at::kInt || rows.scalar_type() == at::kLong);
}

// takeRows(x, rows int32|int64 [n], relu?): rows of x along dim 0, in the
// memory format x has (index_select makes channels-last inputs contiguous
// NCHW, and every later convolution then paid for reordering them), with an
// optional ReLU on the copy. Always into a new map: packing the kept rows
// at the front of x's own memory (sessions 8-11) had each thread move one
// slice of every row, and the next convolution then read maps half written
// by the other core: the steps after each exit ran up to 20% slower at batch
// 128 (the whole early-exit run 0.59-0.60 of the plain forward's time,
// against 0.56-0.58 with the copy). Packing whole rows per thread in place
// took as long as the copy. (takeRowsInPlace moves only the rows that must.)
at::Tensor ztw::TakeRows(const at::Tensor& x, const at::Tensor& rows, bool relu) {
  if (RowsLoopServes(x, rows)) {
    const auto fmt = DenseFormat(x);
    const int64_t N = x.size(0), row = N ? x.numel() / N : 0;
    const auto idx = CheckedRows(rows, N, "takeRows");
    const int64_t n = idx.size(0);
    auto sizes = x.sizes().vec();
    sizes[0] = n;
    auto out = at::empty(sizes, x.options().memory_format(fmt));
    MoveRows(x.data_ptr<float>(), out.data_ptr<float>(), idx.data_ptr<int64_t>(), n, row, relu);
    return out;
  }
  const auto fmt = DenseFormat(x);
  auto out = fmt == at::MemoryFormat::ChannelsLast ? x.permute({0, 2, 3, 1}).index_select(0, rows).permute({0, 3, 1, 2}) : at::index_select(x, 0, rows);
  return relu ? out.relu_() : out;
}
ZTW_OP(takeRows) { return a.ret(TakeRows(a.t(0), a.t(1), a.has(2) && a.b(2))); }

// The in-place move for an index already checked (ip: rows' k entries, each
// below x's N rows): a copy, as takeRows, when the order does not allow it.
template <class I>
static at::Tensor MoveKeptRows(const at::Tensor& x, const at::Tensor& rows, const I* ip) {
  const int64_t N = x.size(0), row = N ? x.numel() / N : 0, k = rows.size(0);
  std::vector<int64_t> to, from;  // rows to write (all below k) from rows never written (k and above)
  for (int64_t j = 0; j < k; j++) {
    if (ip[j] == j) continue;
    if (ip[j] < k) return TakeRows(x, rows, false);
    to.push_back(j);
    from.push_back(ip[j]);
  }
  float* base = x.data_ptr<float>();
  const int64_t moves = static_cast<int64_t>(to.size());
  at::parallel_for(0, moves, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row)), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; i++) std::memcpy(base + to[i] * row, base + from[i] * row, sizeof(float) * row);
  });
  if (moves) torch::autograd::impl::bump_version(x);
  return x.narrow(0, 0, k);
}

// takeRowsInPlace(x, rows int32|int64 [k]): takeRows(x, rows) in x's own
// memory when every rows[j] is j or at least k (the exit books' order: the
// place of a row that leaves goes to a row from past the k-th): only those
// rows move, whole rows per thread, and the answer is a view of x's first k
// rows. After an exit at batch 128 a few rows move where the copy wrote every
// survivor (stages 2-3 of ResNet-56: ~2-3 us a survivor in situ). Any other
// index, or x in a form the loop does not serve: a copy, as takeRows. x is
// the caller's to give up: its rows may be overwritten.
static at::Tensor TakeRowsInPlace(const at::Tensor& x, const at::Tensor& rows) {
  if (!RowsLoopServes(x, rows)) return TakeRows(x, rows, false);
  const auto idx = CheckedRows(rows, x.size(0), "takeRowsInPlace");
  return MoveKeptRows(x, rows, idx.data_ptr<int64_t>());
}
ZTW_OP(takeRowsInPlace) { return a.ret(TakeRowsInPlace(a.t(0), a.t(1))); }

// icHead(features, convW?, convB?, stride, padding, alpha?, poolKernel, fcW, fcB?, prevLogits?, logProbsInto?, book?, exit?, tau?)
//   -> [logits, logProbs], or with logProbsInto the logits alone
// conv 3x3, ReLU + SDN pool (poolKernel 0: ReLU only, maps below 4x4),
// flatten, cat with the previous logits (cascade), linear, log-softmax. The
// convolution, ReLU and pooling are one loop where head_conv.h serves the
// shape (else oneDNN's convolution, then the pooling pass). With
// logProbsInto (a Float32Array of exactly N * K values) the
// log-probabilities are written into it: the runtime reads them at once,
// and a fresh typed array took ~2.7 us of a ~35 us head at batch 1. With a
// book (exitBookNew; logProbsInto required) the head also takes its exit's
// step of the confidence rule (exit_book.h): one crossing an exit; when some
// samples leave and some stay, it answers [logits of the rows that stay,
// their positions (int32)] instead of the logits.
ZTW_OP(icHead) {
  at::Tensor h = a.t(0);
  float* into = nullptr;
  int64_t room = 0;  // the values `into` was checked to hold
  if (a.has(10)) {
    const auto& fcW = a.t(7);
    room = h.dim() >= 1 && fcW.dim() == 2 ? h.size(0) * fcW.size(0) : 0;
    into = a.floatsInto(10, static_cast<size_t>(room));
  }
  ExitBook* book = a.has(11) ? ExitBook::From(a.raw(11), 11) : nullptr;
  if (book && !into) throw ArgError("icHead: a book needs logProbsInto");
  const auto answer = [&](const at::Tensor& logits, const at::Tensor& logProbs) -> Napi::Value {
    if (!into) return a.ret(std::vector<at::Tensor>{logits, logProbs});
    if (logProbs.defined()) {  // the ATen path's, into the caller's memory
      const auto lp = logProbs.contiguous();
      if (lp.numel() != room) throw ArgError("icHead: " + std::to_string(lp.numel()) + " log-probabilities for room of " + std::to_string(room));
      std::memcpy(into, lp.data_ptr<float>(), sizeof(float) * static_cast<size_t>(lp.numel()));
    }
    if (book) {
      if (logits.dim() != 2 || logits.size(1) != book->K()) throw ArgError("icHead: the book is for " + std::to_string(book->K()) + " classes");
      const int64_t n = logits.size(0), kept = book->Step(a.i64(12), into, n, a.d(13), false);
      if (kept > 0 && kept < n) {
        // The rows that stay, as the backbone's index and the next head's
        // cascade input, from this call: as two calls of their own (an
        // index tensor, then the logits' rows) they took ~20-35 us an exit
        // at batch 128, the caches cold after the convolutions.
        auto keep = at::empty({kept}, at::TensorOptions().dtype(at::kInt));
        std::memcpy(keep.data_ptr<int32_t>(), book->Stay(), sizeof(int32_t) * static_cast<size_t>(kept));
        // The book's positions are in range and in its fill order: no int64 copy to check.
        const auto narrowed = RowsLoopServes(logits, keep) ? MoveKeptRows(logits, keep, keep.data_ptr<int32_t>()) : TakeRows(logits, keep, false);
        return a.ret(std::vector<at::Tensor>{narrowed, keep});
      }
    }
    return a.ret(logits);
  };
  const auto k = a.i64(6);
  if (a.has(1)) {
    const auto s = a.i64(3), p = a.i64(4);
    float alpha = 0;
    if (k > 0) {
      const auto& al = a.t(5);
      if (al.numel() != 1) throw ArgError("icHead: alpha must hold one value");
      alpha = al.scalar_type() == at::kFloat && al.device().is_cpu() ? *al.data_ptr<float>() : al.to(at::kFloat).item<float>();
    }
    const auto fused = k > 0 ? HeadConvPool(h, a.t(1), Opt(a, 2), s, p, alpha, k) : at::Tensor();
    if (!fused.defined()) h = Conv2d(h, a.t(1), Opt(a, 2), {s, s}, {p, p}, {1, 1}, 1);
    if (k > 0) {
      h = fused.defined() ? fused : ReluSdnPool(h, alpha, k);  // contiguous NCHW: the flattened features
      if (auto out = ClassifierTail(h, Opt(a, 9), a.t(7), Opt(a, 8), into)) return answer(out->logits, out->logProbs);
    } else {
      h = at::relu(h);
    }
  }
  h = h.flatten(1);
  if (a.has(9)) h = at::cat({h, a.t(9)}, 1);
  auto logits = at::linear(h, a.t(7), Opt(a, 8));
  return answer(logits, at::log_softmax(logits, 1));
}
