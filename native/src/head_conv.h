// The internal classifier's convolution, ReLU and SDN pooling in one pass
// (Winograd's or the direct loop's, with the pooling as its epilogue): each
// output vector is ReLU'd and folded into its pooling window's max and sum
// while still in registers. The convolution's output map is never written: oneDNN's
// convolution followed by our pooling pass wrote it and read it back, and at
// one image the pooling then read half of it from the other core's cache.
#pragma once
#include <ATen/ATen.h>

namespace ztw {

// The pooled features [N, O, H / k, W / k] (contiguous NCHW, what the
// classifier's flatten wants) of relu(conv3x3(x, w) + b) under SDN pooling:
// avg + alpha * (max - avg) over each k x k window. Served: input channels a
// multiple of 16, stride 1, padding 1, 3x3, no gradients, AVX-512, and
// - an even window (every head of a CIFAR ResNet: 32x32 maps in windows of
//   8, 16x16 in 4, 8x8 in 2) into 16, 32 or 64 channels, at any batch:
//   Winograd's F(2x2, 3x3) (winograd.h), session 15. Against the direct
//   loop below, ResNet-56's heads at batch 128: 10.6-10.8 against 11.8-12.0
//   us a sample with 16 channels, 7.8-8.2 against 11.8-11.9 with 32, and
//   7.2-7.4 with 64 against oneDNN and the pooling pass's 10.6-10.9; at one
//   image 15.6-17.8 against 20-21 us with 32 and 64 channels;
// - otherwise the direct loop (conv16.h) into 16 or 32 channels at any
//   batch, 64 up to 8 samples (from 32 samples on oneDNN won there). At
//   batch 1 it had taken ~23 against ~27 us for 16 channels and 31 against
//   39 for 32, where oneDNN's pooling pass read half its map from the other
//   core's cache.
// Otherwise an undefined tensor, and the caller composes the convolution and
// the pooling. Each served sample's numbers are the same whatever the batch
// and the threads.
at::Tensor HeadConvPool(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, int64_t stride, int64_t padding, float alpha, int64_t k);

}  // namespace ztw
