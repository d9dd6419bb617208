// Neural-network layers and losses.
#include "op.h"
#include "nn.h"
#include "kernels.h"
#include "conv16.h"
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/variable.h>
#include <algorithm>
#include <vector>

using namespace ztw;

static int64_t Reduction(const Args& a, size_t i) {
  if (!a.has(i)) return at::Reduction::Mean;
  auto r = a.str(i);
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  throw ArgError("reduction must be 'mean', 'sum' or 'none', got '" + r + "'");
}

ZTW_OP(matmul) { return a.ret(at::matmul(a.t(0), a.t(1))); }
// linear(x, weight[out,in], bias?)
ZTW_OP(linear) { return a.ret(at::linear(a.t(0), a.t(1), Opt(a, 2))); }
// conv2d(x, weight, bias?, stride[2], padding[2], dilation[2], groups)
// Inference goes straight to oneDNN (dnnl_conv.cc): libtorch 1.13 sends small
// single-image convolutions (N * C * H * W <= 20480, 3x3 kernels) to its
// im2col path, which measured 3-100x slower here and made batch-1 latency
// worse than batch 128 per image. A 3x3 convolution into 16 channels runs our
// own loop first (conv16.h). Training keeps at::conv2d and its autograd.
at::Tensor ztw::Conv2d(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride,
                       at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, const ConvFusion& fusion) {
  if (auto y = Conv16(x, w, b, stride, padding, dilation, groups, fusion); y.defined()) return y;
  if (fusion.inRows || fusion.addRows || fusion.reluIn || fusion.reluAdd) {
    // Gathered inputs where our loop does not serve: their copies, then the plain call.
    if (at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad())) throw ArgError("conv2d: gathered inputs are for inference without gradients");
    const auto gathered = [](const at::Tensor& t, const c10::optional<at::Tensor>& rows, bool relu) {
      if (rows) return TakeRows(t, *rows, relu);
      return relu ? at::relu(t) : t;
    };
    ConvFusion plain;
    plain.relu = fusion.relu;
    if (fusion.add) plain.add = gathered(*fusion.add, fusion.addRows, fusion.reluAdd);
    plain.accumulate = fusion.add && (fusion.addRows || fusion.reluAdd || fusion.accumulate);  // a copy of ours, or given up
    return Conv2d(gathered(x, fusion.inRows, fusion.reluIn), w, b, stride, padding, dilation, groups, plain);
  }
  if (DnnlConvServes(x, w, groups)) return DnnlConv(x, w, b, stride, padding, dilation, groups, fusion);
  auto y = at::conv2d(x, w, b, stride, padding, dilation, groups);
  if (fusion.add) y = y + *fusion.add;
  return fusion.relu ? at::relu(y) : y;
}
ZTW_OP(conv2d) { return a.ret(Conv2d(a.t(0), a.t(1), Opt(a, 2), a.ints(3), a.ints(4), a.ints(5), a.i64(6))); }
void ztw::ReluDense(const at::Tensor& x, at::Tensor& out) {
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, x.numel(), 65536, [&](int64_t begin, int64_t end) { ReluCopy(xp + begin, op + begin, end - begin); });
  if (out.is_same(x)) torch::autograd::impl::bump_version(out);
}

// convFused(x, weight, bias?, stride[2], padding[2], dilation[2], groups, relu, add?, consumeAdd?, reluInput?, inRows?, addRows?, reluAdd?, keepInput?):
// relu?(conv2d(x) + add?), for inference in one pass over the output; with
// consumeAdd the result may be written into the addend's memory. With
// reluInput (the caller gives x's values up, no gradients) x becomes relu(x)
// in its own memory first, in this call: a staged ResNet hands its taps out
// before the block's final ReLU, and that ReLU as a call of its own cost a
// crossing (and a handle to free) per block at batch 1.
// With inRows (int32 [n]) the convolution reads rows inRows of x (the
// output has n), with reluInput their ReLU on the way and x untouched; with
// addRows the rows of the addend likewise, reluAdd its ReLU (ConvFusion).
// keepInput: x untouched without inRows too, reluInput on the way.
ZTW_OP(convFused) {
  const bool gather = a.has(11) || (a.has(14) && a.b(14));
  if (a.has(10) && a.b(10) && !gather) {
    auto& x = a.t(0);
    if ((at::GradMode::is_enabled() && x.requires_grad()) || x.scalar_type() != at::kFloat || !x.device().is_cpu() || !x.is_contiguous(DenseFormat(x)))
      throw ArgError("convFused: reluInput needs a dense float32 CPU input without gradients");
    ReluDense(x, x);
  }
  ConvFusion fusion;
  fusion.relu = a.b(7);
  fusion.add = Opt(a, 8);
  fusion.accumulate = a.has(9) && a.b(9);
  if (gather) {
    fusion.inRows = Opt(a, 11);
    fusion.reluIn = a.has(10) && a.b(10);
  }
  fusion.addRows = Opt(a, 12);
  fusion.reluAdd = a.has(13) && a.b(13);
  return a.ret(Conv2d(a.t(0), a.t(1), Opt(a, 2), a.ints(3), a.ints(4), a.ints(5), a.i64(6), fusion));
}
// batchNorm(x, weight?, bias?, runningMean?, runningVar?, training, momentum, eps):
// in training mode the running statistics are updated in place.
ZTW_OP(batchNorm) {
  return a.ret(at::batch_norm(a.t(0), Opt(a, 1), Opt(a, 2), Opt(a, 3), Opt(a, 4), a.b(5), a.d(6), a.d(7), true));
}
// layerNorm(x, normalizedShape, weight?, bias?, eps)
ZTW_OP(layerNorm) { return a.ret(at::layer_norm(a.t(0), a.ints(1), Opt(a, 2), Opt(a, 3), a.d(4), true)); }
ZTW_OP(dropout) { return a.ret(at::dropout(a.t(0), a.d(1), a.b(2))); }
// maxPool2d(x, kernel, stride, padding, dilation, ceilMode)
ZTW_OP(maxPool2d) { return a.ret(at::max_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.ints(4), a.b(5))); }
// avgPool2d(x, kernel, stride, padding, ceilMode, countIncludePad)
ZTW_OP(avgPool2d) { return a.ret(at::avg_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.b(4), a.b(5))); }
ZTW_OP(adaptiveAvgPool2d) { return a.ret(at::adaptive_avg_pool2d(a.t(0), a.ints(1))); }
// poolLinear(x [N, C, H, W], weight [K, C], bias?) -> [N, K]:
// linear(adaptive_avg_pool2d(x, 1).flatten(1)), a network's classifier. For
// inference one loop per image (ours, in kernels.cc): at the end of a
// batch-1 ResNet-56 pass the three ATen ops took 60-75 us, each running
// cold after 55 convolutions (~16 us on their own in a loop). With
// gradients, or shapes the loop does not take, the ATen ops (and their errors).
ZTW_OP(poolLinear) {
  const auto& x = a.t(0);
  const auto& w = a.t(1);
  const auto b = Opt(a, 2);
  const auto isFloat = [](const at::Tensor& t) { return t.scalar_type() == at::kFloat && t.device().is_cpu(); };
  const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b && b->requires_grad()));
  const auto fmt = DenseFormat(x);  // contiguous for anything but a 4-D channels-last map
  if (grad || x.dim() != 4 || !isFloat(x) || !x.is_contiguous(fmt) || w.dim() != 2 || !isFloat(w) || w.size(1) != x.size(1) ||
      (b && (b->dim() != 1 || b->size(0) != w.size(0) || !isFloat(*b))) || x.size(2) * x.size(3) == 0)
    return a.ret(at::linear(at::adaptive_avg_pool2d(x, {1, 1}).flatten(1), w, b));
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3), K = w.size(0);
  const auto wc = w.contiguous();
  const auto bc = b ? b->contiguous() : at::Tensor();
  auto logits = at::empty({N, K}, x.options().memory_format(at::MemoryFormat::Contiguous));
  const float *xp = x.data_ptr<float>(), *wp = wc.data_ptr<float>(), *bp = b ? bc.data_ptr<float>() : nullptr;
  float* lp = logits.data_ptr<float>();
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  at::parallel_for(0, N, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, C * (S + K))), [&](int64_t begin, int64_t end) {
    std::vector<float> mean(static_cast<size_t>(C));
    MeanPoolLinearRows(xp, wp, bp, lp, mean.data(), begin, end, C, S, K, cl);
  });
  return a.ret(logits);
}
ZTW_OP(adaptiveMaxPool2d) { return a.ret(std::get<0>(at::adaptive_max_pool2d(a.t(0), a.ints(1)))); }
ZTW_OP(softmax) { return a.ret(at::softmax(a.t(0), a.i64(1))); }
ZTW_OP(logSoftmax) { return a.ret(at::log_softmax(a.t(0), a.i64(1))); }
// crossEntropy(logits, target(int64 classes), reduction, labelSmoothing, weight?)
ZTW_OP(crossEntropy) {
  double smoothing = a.has(3) ? a.d(3) : 0.0;
  return a.ret(at::cross_entropy_loss(a.t(0), a.t(1), Opt(a, 4), Reduction(a, 2), -100, smoothing));
}
ZTW_OP(nllLoss) { return a.ret(at::nll_loss_nd(a.t(0), a.t(1), Opt(a, 3), Reduction(a, 2), -100)); }
// klDiv(input(log-probs), target, reduction, logTarget): PyTorch's KLDivLoss.
ZTW_OP(klDiv) {
  auto r = a.has(2) ? a.str(2) : std::string("mean");
  bool logTarget = a.has(3) && a.b(3);
  if (r == "batchmean") {
    auto l = at::kl_div(a.t(0), a.t(1), at::Reduction::Sum, logTarget);
    return a.ret(l / a.t(0).size(0));
  }
  return a.ret(at::kl_div(a.t(0), a.t(1), Reduction(a, 2), logTarget));
}
ZTW_OP(mseLoss) { return a.ret(at::mse_loss(a.t(0), a.t(1), Reduction(a, 2))); }
ZTW_OP(oneHot) { return a.ret(at::one_hot(a.t(0), a.i64(1))); }
