// Early-exit inference: one entry per step of the exit loop. At batch 1 the
// ~15 small ops of an internal classifier cost more in JS-to-native
// crossings (~4 us each) than the classifier's own convolution, so the
// runtime runs a whole head in one call: the computation ICHead.forward
// composes in TypeScript, with the ReLU and both poolings in one pass.
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>
#include "op.h"
#include "nn.h"

using namespace ztw;

static inline void Accumulate(float x, float& mx, float& sum) {
  const float v = std::max(x, 0.0f);
  mx = std::max(mx, v);
  sum += v;
}

// SDN pooling of relu(h) in one pass over the map: per k x k window,
// avg + alpha * (max - avg), written as contiguous NCHW [N, C, H/k, W/k]
// (what the flatten before the classifier wants). The six ATen ops it
// replaces, each a pass over the map, took ~25 us of a ~80 us head at batch 1.
static at::Tensor ReluSdnPool(const at::Tensor& h, const at::Tensor& alpha, int64_t k) {
  if (h.dim() != 4 || h.scalar_type() != at::kFloat || !h.device().is_cpu()) throw ArgError("icHead: pooled features must be float32 [N, C, H, W] on the CPU");
  if (k < 1 || h.size(2) < k || h.size(3) < k) throw ArgError("icHead: pool kernel " + std::to_string(k) + " does not fit the map");
  if (alpha.numel() != 1) throw ArgError("icHead: alpha must hold one value");
  const int64_t N = h.size(0), C = h.size(1), H = h.size(2), W = h.size(3), oh = H / k, ow = W / k;
  const auto x = h.contiguous(at::MemoryFormat::ChannelsLast);  // channels innermost
  auto out = at::empty({N, C, oh, ow}, h.options());
  const float a = alpha.to(at::kFloat).item<float>();
  const float inv = 1.0f / static_cast<float>(k * k);
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // Threads only for work worth a fork: ~32K values per task (at batch 1 the
  // whole map is less, and two threads were slower than one).
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, ow * k * k * C));
  at::parallel_for(0, N * oh, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; t++) {
      const int64_t n = t / oh, i = t % oh;
      for (int64_t j = 0; j < ow; j++) {
        const float* window = xp + ((n * H + i * k) * W + j * k) * C;
        // Eight channels at a time in local accumulators, which stay in
        // vector registers; accumulating through memory ran 10x slower.
        for (int64_t c0 = 0; c0 < C; c0 += 8) {
          const int64_t nc = std::min<int64_t>(8, C - c0);
          float mx[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // after a ReLU every value is >= 0
          float sum[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          for (int64_t dy = 0; dy < k; dy++)
            for (int64_t dx = 0; dx < k; dx++) {
              const float* px = window + (dy * W + dx) * C + c0;
              if (nc == 8) {
                for (int u = 0; u < 8; u++) Accumulate(px[u], mx[u], sum[u]);
              } else {
                for (int u = 0; u < nc; u++) Accumulate(px[u], mx[u], sum[u]);
              }
            }
          for (int u = 0; u < nc; u++) {
            const float av = sum[u] * inv;
            op[((n * C + c0 + u) * oh + i) * ow + j] = av + a * (mx[u] - av);
          }
        }
      }
    }
  });
  return out;
}

// takeRows(x, rows int64[n]): rows of x along dim 0, in the memory format x
// has. index_select makes channels-last inputs contiguous NCHW, and every
// later convolution then paid for reordering them.
ZTW_OP(takeRows) {
  const auto& x = a.t(0);
  const auto& rows = a.t(1);
  if (x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast))
    return a.ret(x.permute({0, 2, 3, 1}).index_select(0, rows).permute({0, 3, 1, 2}));
  return a.ret(at::index_select(x, 0, rows));
}

// icHead(features, convW?, convB?, stride, padding, alpha?, poolKernel, fcW, fcB?, prevLogits?) -> [logits, logProbs]
// conv 3x3, ReLU + SDN pool (poolKernel 0: ReLU only, maps below 4x4),
// flatten, cat with the previous logits (cascade), linear, log-softmax.
ZTW_OP(icHead) {
  at::Tensor h = a.t(0);
  const auto k = a.i64(6);
  if (a.has(1)) {
    const auto s = a.i64(3), p = a.i64(4);
    h = Conv2d(h, a.t(1), Opt(a, 2), {s, s}, {p, p}, {1, 1}, 1);
    h = k > 0 ? ReluSdnPool(h, a.t(5), k) : at::relu(h);
  }
  h = h.flatten(1);
  if (a.has(9)) h = at::cat({h, a.t(9)}, 1);
  auto logits = at::linear(h, a.t(7), Opt(a, 8));
  auto logProbs = at::log_softmax(logits, 1);
  return a.ret(std::vector<at::Tensor>{logits, logProbs});
}
