// Why not at::mkldnn_convolution: for every call it builds a primitive
// descriptor (the implementation search) and reorders the weights into the
// layout the kernel wants, ~30-60 us of work on one thread while the other
// waits. A network of 55 convolutions pays that 55 times per batch, and the
// early-exit runtime, whose shrinking batches make small convolutions, pays
// it relatively more. Here both are kept: primitives per shape in an LRU,
// reordered weights per tensor version.
#include "dnnl_conv.h"
#include <oneapi/dnnl/dnnl.hpp>
#include <array>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <torch/csrc/autograd/variable.h>
#include "args.h"
#include "lru.h"
#include "weight_cache.h"

namespace ztw {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

dnnl::engine& Engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& Stream() {
  static dnnl::stream s(Engine());
  return s;
}

// A primitive with its argument memories, whose data handles are pointed at
// each call's tensors (creating memory objects and the argument map per call
// was a tenth of a batch-1 convolution; asking the descriptor for each
// argument's layout at every call was still ~0.15 us of one).
struct Primitive {
  explicit Primitive(const dnnl::convolution_forward::primitive_desc& d)
      : pd(d), conv(d), weightsDesc(d.weights_desc()), src(d.src_desc(), Engine(), nullptr), dst(d.dst_desc(), Engine(), nullptr) {
    args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    if (!d.bias_desc().is_zero()) {
      bias = memory(d.bias_desc(), Engine(), nullptr);
      args.emplace(DNNL_ARG_BIAS, bias);
    }
  }
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  memory::desc weightsDesc;
  memory src, dst, bias;  // the same memory objects as in args
  std::unordered_map<int, memory> args;
};

// Every integer that shapes a primitive: batch, channels, sizes, kernel,
// strides, padding, dilation, groups and the layout/bias/epilogue flags.
struct ConvKey {
  std::array<int64_t, 15> v;
  bool operator==(const ConvKey& o) const { return v == o.v; }
};
struct ConvKeyHash {
  size_t operator()(const ConvKey& k) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the words
    for (int64_t x : k.v) h = (h ^ static_cast<uint64_t>(x)) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

struct Cache {
  std::mutex mutex;
  Lru<ConvKey, Primitive, ConvKeyHash> primitives{2048};
  // Each weight tensor in the layouts its primitives asked for (a few at
  // most: the kernel choice can differ with the batch size).
  WeightCache<std::vector<std::pair<memory::desc, memory>>> weights{512};
};
Cache& TheCache() {
  static Cache c;
  return c;
}

const memory& WeightsIn(Cache& cache, const at::Tensor& w, const memory::dims& dims, const memory::desc& want) {
  auto& layouts = cache.weights.For(w);
  for (const auto& [desc, mem] : layouts)
    if (desc == want) return mem;
  // The user layout: [O, C/g, kh, kw] contiguous is goihw with the group split out.
  const auto plain = w.contiguous();
  memory user({dims, kF32, dims.size() == 5 ? Tag::goihw : Tag::oihw}, Engine(), const_cast<void*>(plain.data_ptr()));
  memory packed(want, Engine());
  dnnl::reorder(user, packed).execute(Stream(), user, packed);
  Stream().wait();
  layouts.emplace_back(want, packed);
  return layouts.back().second;
}

// Points a primitive's arguments at one call's tensors (bias undefined: none).
void PointAt(Primitive& p, Cache& cache, const at::Tensor& w, const memory::dims& wdims, const at::Tensor& src, const at::Tensor& bias, const at::Tensor& dst) {
  p.args.insert_or_assign(DNNL_ARG_WEIGHTS, WeightsIn(cache, w, wdims, p.weightsDesc));
  p.src.set_data_handle(const_cast<void*>(src.data_ptr()));
  p.dst.set_data_handle(dst.data_ptr());
  if (bias.defined()) p.bias.set_data_handle(const_cast<void*>(bias.data_ptr()));
}

// PyTorch's rule, channels-last out when the input or the weight is, except
// that a tensor which is both (one channel, as a grey image, or 1x1 maps)
// counts as channels-last: PyTorch calls it NCHW, and a grey network's
// stem then wrote NCHW maps that the next convolution copied back to NHWC.
bool ChannelsLastOut(const at::Tensor& x, const at::Tensor& w) {
  const auto cl = [](const at::Tensor& t) { return t.is_contiguous(at::MemoryFormat::ChannelsLast); };
  const auto nchwOnly = [&](const at::Tensor& t) { return t.is_contiguous() && !cl(t); };
  if (cl(x) && !x.is_contiguous()) return true;
  if (cl(w) && !w.is_contiguous()) return true;
  if (nchwOnly(x) || nchwOnly(w)) return false;
  return cl(x) || x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

using ConvPd = dnnl::convolution_forward::primitive_desc;

// Up to this batch a 3x3 (or larger) ungrouped convolution times its
// candidates (below) on its first call.
constexpr int64_t kTimedBatch = 2;

// oneDNN's implementations worth trying for a problem, the one to take
// first. Its own first choice (brgconv, mostly), and its direct jit kernel
// where that can win: for a first layer (fewer than 16 input channels: a
// grey or RGB image) at any batch, where brgconv is far slower (394 against
// 211 us for a 1-channel 32x32 stem at batch 128, 521 against 410 with 3
// channels: taken without timing), and for one or two images through a 3x3
// kernel, where which is faster depends on the machine and the epilogue:
// on one host of this project jit was ahead by 2-4 us for every ResNet-56
// layer at batch 1; on a later one it was ahead by ~1 us with 16 channels
// and a ReLU but behind by 2 (32 channels and a bias, the heads) to 3.5 us
// (32 channels, residual add and ReLU: 18.0 against 14.6).
std::vector<ConvPd> Candidates(const dnnl::convolution_forward::desc& desc, const dnnl::primitive_attr& attr, int64_t N, int64_t C, int64_t taps, int64_t groups) {
  ConvPd first(desc, attr, Engine());
  if (groups != 1 || !(C < 16 || (N <= kTimedBatch && taps > 1))) return {first};
  ConvPd probe(desc, attr, Engine());
  do {
    if (std::strncmp(probe.impl_info_str(), "jit:", 4) != 0) continue;
    if (C < 16) return {probe};
    if (std::strcmp(probe.impl_info_str(), first.impl_info_str()) == 0) return {first};
    return {probe, first};
  } while (probe.next_impl());
  return {first};
}

// The fastest candidate on this call's tensors, its primitive built once:
// interleaved runs into a scratch output (a sum post-op accumulates into
// it), the least of five each, which a busy neighbour slows less than it
// does a median.
Primitive Fastest(Cache& cache, const std::vector<ConvPd>& candidates, const at::Tensor& w, const memory::dims& wdims, const at::Tensor& src, const at::Tensor& bias,
                  const at::Tensor& scratch) {
  std::vector<Primitive> prims;
  prims.reserve(candidates.size());
  for (const auto& pd : candidates) {
    prims.emplace_back(pd);
    PointAt(prims.back(), cache, w, wdims, src, bias, scratch);
  }
  std::vector<double> best(prims.size(), 1e300);
  for (int round = 0; round < 6; round++)
    for (size_t i = 0; i < prims.size(); i++) {
      const auto t0 = std::chrono::steady_clock::now();
      prims[i].conv.execute(Stream(), prims[i].args);
      Stream().wait();
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (round > 0) best[i] = std::min(best[i], t);  // round 0 warms caches and the kernel
    }
  return std::move(prims[static_cast<size_t>(std::min_element(best.begin(), best.end()) - best.begin())]);
}

}  // namespace

bool DnnlConvServes(const at::Tensor& x, const at::Tensor& w, int64_t groups) {
  const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad());
  return !grad && x.device().is_cpu() && w.device().is_cpu() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat &&
         x.dim() == 4 && w.dim() == 4 && x.numel() > 0 && groups > 0 && w.size(1) * groups == x.size(1) && w.size(0) % groups == 0 &&
         at::globalContext().userEnabledMkldnn() && at::hasMKLDNN();
}

at::Tensor DnnlConv(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride,
                    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, const ConvFusion& fusion) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), O = w.size(0), kh = w.size(2), kw = w.size(3);
  const bool geometry = stride.size() == 2 && padding.size() == 2 && dilation.size() == 2 && stride[0] > 0 && stride[1] > 0 && padding[0] >= 0 &&
                        padding[1] >= 0 && dilation[0] > 0 && dilation[1] > 0;
  const int64_t OH = geometry ? (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0] + 1 : 0;
  const int64_t OW = geometry ? (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1] + 1 : 0;
  // libtorch words the errors of a bad geometry (and throws them).
  if (OH < 1 || OW < 1) return at::conv2d(x, w, b, stride, padding, dilation, groups);
  if (b && (b->dim() != 1 || b->size(0) != O || b->scalar_type() != at::kFloat)) throw ArgError("conv2d: bias must be float32 [" + std::to_string(O) + "]");
  const bool cl = ChannelsLastOut(x, w);
  const auto fmt = cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const Tag act = cl ? Tag::nhwc : Tag::nchw;
  at::Tensor add;
  if (fusion.add) {
    if (fusion.add->sizes() != at::IntArrayRef({N, O, OH, OW}) || fusion.add->scalar_type() != at::kFloat || !fusion.add->device().is_cpu())
      throw ArgError("conv2d: the fused addend must be float32 [" + std::to_string(N) + ", " + std::to_string(O) + ", " + std::to_string(OH) + ", " + std::to_string(OW) + "]");
    add = fusion.add->contiguous(fmt);
  }
  const auto src = x.contiguous(fmt);
  // The residual add is oneDNN's sum post-op, accumulating into the output:
  // brgconv serves that, where a binary add sent the convolution to the jit
  // kernel, 10-20% slower at batch 128 (16 channels 32x32: 13.3 against
  // 14.8 us a sample, 64 channels 8x8: 12.1 against 14.6). The output is the
  // addend's own memory when the caller gives it up (no third map written),
  // else a copy of the addend: one kernel either way, so a pass that keeps
  // its maps and one that reuses them give the same numbers. In place only
  // where the addend is already dense in the layout the convolution writes
  // (no copy was made) and apart from the input; that no one else reads it
  // is the caller's word.
  const bool into = fusion.add && fusion.accumulate && add.is_same(*fusion.add) && at::get_overlap_status(add, src) == at::MemOverlapStatus::No;
  const memory::dims wdims = groups > 1 ? memory::dims{groups, O / groups, C / groups, kh, kw} : memory::dims{O, C, kh, kw};
  const auto bias = b ? b->contiguous() : at::Tensor();

  const ConvKey key{{N, C, H, W, O, kh, kw, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], groups,
                     static_cast<int64_t>(cl | (b.has_value() << 1) | (fusion.add.has_value() << 2) | (fusion.relu << 3))}};

  auto& cache = TheCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto* prim = cache.primitives.Find(key);
  if (!prim) {
    const memory::desc srcMd({N, C, H, W}, kF32, act), dstMd({N, O, OH, OW}, kF32, act);
    const memory::desc wany(wdims, kF32, Tag::any), biasMd({O}, kF32, Tag::a);
    dnnl::post_ops ops;
    if (fusion.add) ops.append_sum(1.0f);
    if (fusion.relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const memory::dims st{stride[0], stride[1]}, dil{dilation[0] - 1, dilation[1] - 1}, pad{padding[0], padding[1]};
    auto desc = b ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, srcMd, wany, biasMd, dstMd, st, dil, pad, pad)
                  : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, srcMd, wany, dstMd, st, dil, pad, pad);
    const auto candidates = Candidates(desc, attr, N, C, kh * kw, groups);
    prim = &cache.primitives.Insert(key, candidates.size() > 1 ? Fastest(cache, candidates, w, wdims, src, bias, at::zeros({N, O, OH, OW}, x.options().memory_format(fmt)))
                                                               : Primitive(candidates[0]));
  }
  auto out = into ? add : at::empty({N, O, OH, OW}, x.options().memory_format(fmt));
  if (fusion.add && !into) out.copy_(add);
  PointAt(*prim, cache, w, wdims, src, bias, out);
  prim->conv.execute(Stream(), prim->args);
  Stream().wait();
  if (into) torch::autograd::impl::bump_version(out);
  return out;
}

void ClearDnnlConvCache() {
  auto& cache = TheCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.primitives.Clear();
  cache.weights.Clear();
}

}  // namespace ztw
