// Early-exit inference: one entry per step of the exit loop. At batch 1 the
// ~15 small ops of an internal classifier cost more in JS-to-native
// crossings (~4 us each) than the classifier's own convolution, so the
// runtime runs a whole head in one call. The ops are the ones ICHead.forward
// composes in TypeScript, in the same order, so the numbers are the same.
#include "op.h"
#include "nn.h"

using namespace ztw;

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
// conv 3x3 + ReLU, SDN pool avg + alpha * (max - avg) (poolKernel 0: none),
// flatten, cat with the previous logits (cascade), linear, log-softmax.
ZTW_OP(icHead) {
  at::Tensor h = a.t(0);
  if (a.has(1)) {
    const auto s = a.i64(3), p = a.i64(4);
    h = at::relu(Conv2d(h, a.t(1), Opt(a, 2), {s, s}, {p, p}, {1, 1}, 1));
  }
  const auto k = a.i64(6);
  if (k > 0) {
    auto mx = at::max_pool2d(h, {k, k}, {k, k}, {0, 0}, {1, 1}, false);
    auto av = at::avg_pool2d(h, {k, k}, {k, k}, {0, 0}, false, true);
    h = av.add(mx.sub(av).mul(a.t(5)));
  }
  h = h.flatten(1);
  if (a.has(9)) h = at::cat({h, a.t(9)}, 1);
  auto logits = at::linear(h, a.t(7), Opt(a, 8));
  auto logProbs = at::log_softmax(logits, 1);
  return a.ret(std::vector<at::Tensor>{logits, logProbs});
}
