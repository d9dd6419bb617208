// Inference convolutions on oneDNN itself (the library libtorch's own CPU
// convolutions use), with what libtorch 1.13's mkldnn_convolution redoes on
// every call kept across calls: the primitive, chosen for each shape once,
// and the weights, reordered into its blocked layout once per version. A
// ReLU or a residual add runs inside the convolution's own store.
#pragma once
#include <ATen/ATen.h>

namespace ztw {

struct ConvFusion {
  /** Added to the convolution's output (same shape), before the ReLU. */
  c10::optional<at::Tensor> add;
  bool relu = false;
  /**
   * The addend is the caller's to consume: the result may be written into
   * its memory (and is then returned as that tensor).
   */
  bool accumulate = false;
  /**
   * Gathered inputs, for a runtime whose batch narrows after an exit: the
   * convolution reads rows inRows of x (int32 [n]; its output has n rows)
   * and adds rows addRows of the addend, instead of copies of them; with
   * reluIn / reluAdd their ReLU on the way (maps handed out before it).
   * Inference only. Conv16 reads through them; elsewhere Conv2d makes the
   * copies first.
   */
  c10::optional<at::Tensor> inRows, addRows;
  bool reluIn = false, reluAdd = false;
};

/** Whether DnnlConv serves these arguments (float32 CPU 4-D, no gradient wanted, oneDNN on). */
bool DnnlConvServes(const at::Tensor& x, const at::Tensor& w, int64_t groups);

/** relu?(conv2d(x, w, b) + add?), in x's memory format (channels-last if x or w is). */
at::Tensor DnnlConv(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride,
                    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, const ConvFusion& fusion);

/** Drops every cached primitive and weight layout (the allocator's emptyCache calls it). */
void ClearDnnlConvCache();

}  // namespace ztw
