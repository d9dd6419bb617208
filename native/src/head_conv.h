// The internal classifier's convolution, ReLU and SDN pooling in one loop
// (conv16.h's, with the pooling as its epilogue): each output vector is
// ReLU'd and folded into its pooling window's max and sum while still in
// registers. The convolution's output map is never written: oneDNN's
// convolution followed by our pooling pass wrote it and read it back, and at
// one image the pooling then read half of it from the other core's cache.
#pragma once
#include <ATen/ATen.h>

namespace ztw {

// The pooled features [N, O, H / k, W / k] (contiguous NCHW, what the
// classifier's flatten wants) of relu(conv3x3(x, w) + b) under SDN pooling:
// avg + alpha * (max - avg) over each k x k window. Served: any batch with
// 16 or 32 output channels (one or two register blocks; in ResNet-56's heads
// at batch 1 ~23 against ~27 us for 16 channels, 31 against 39 for 32), up
// to 8 samples with 64 (two passes of two blocks; from 32 samples on
// oneDNN won), input channels a multiple of 16, stride 1, padding 1, 3x3,
// no gradients, AVX-512. Sessions 11-12 ran it only up to batch 4: oneDNN
// and the pooling pass were as fast from 8 on. With each window's max and
// sum folded in registers (session 13) it is 7-13% faster than they are at
// 6 to 128 samples (16- and 32-channel heads, alternating in one process).
// Otherwise an undefined tensor, and the caller composes the convolution and
// the pooling. Each served sample's numbers are the same whatever the batch
// and the threads.
at::Tensor HeadConvPool(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, int64_t stride, int64_t padding, float alpha, int64_t k);

}  // namespace ztw
