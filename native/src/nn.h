// Layer helpers that more than one op family calls.
#pragma once
#include "args.h"
#include "dnnl_conv.h"

namespace ztw {

// relu?(conv2d(x) + add?) for inference and training alike: oneDNN with the
// epilogue fused without gradients, the separate ATen ops with them (see ops_nn.cc).
at::Tensor Conv2d(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride,
                  at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, const ConvFusion& fusion = {});

// The layout of a tensor for our own loops: channels-last for a 4-D tensor
// stored that way (and not also plain contiguous), else contiguous. Dense
// storage in it is x.is_contiguous(DenseFormat(x)).
inline at::MemoryFormat DenseFormat(const at::Tensor& x) {
  const bool cl = x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  return cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

// Rows `rows` (int32 or int64 [n]) of x along dim 0, in x's memory format,
// relu'd when asked (ops_exits.cc: the runtime's copy after an exit).
at::Tensor TakeRows(const at::Tensor& x, const at::Tensor& rows, bool relu);

// out = max(x, 0) through our own loop (kernels.h), both float32 CPU and
// dense in x's DenseFormat (out may be x itself, whose version it then bumps).
void ReluDense(const at::Tensor& x, at::Tensor& out);

// An optional tensor argument (undefined or null: none).
inline c10::optional<at::Tensor> Opt(const Args& a, size_t i) {
  auto t = a.optT(i);
  return t ? c10::optional<at::Tensor>(*t) : c10::nullopt;
}

}  // namespace ztw
