// Elementwise arithmetic, comparisons and unary maths; in-place updates for
// optimizers. A second operand may be a tensor or a number.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/variable.h>
#include "op.h"
#include "kernels.h"
#include "nn.h"

using namespace ztw;

#define BINARY(name, fn)                                                   \
  ZTW_OP(name) {                                                           \
    if (IsScalarArg(a, 1)) return a.ret(fn(a.t(0), a.scalar(1)));          \
    return a.ret(fn(a.t(0), a.t(1)));                                      \
  }
#define UNARY(name, fn) \
  ZTW_OP(name) { return a.ret(fn(a.t(0))); }

// add/sub take an optional alpha: a + alpha * b.
ZTW_OP(add) {
  at::Scalar alpha = a.has(2) ? a.scalar(2) : at::Scalar(1);
  if (IsScalarArg(a, 1)) return a.ret(at::add(a.t(0), a.scalar(1), alpha));
  return a.ret(at::add(a.t(0), a.t(1), alpha));
}
ZTW_OP(sub) {
  at::Scalar alpha = a.has(2) ? a.scalar(2) : at::Scalar(1);
  if (IsScalarArg(a, 1)) return a.ret(at::sub(a.t(0), a.scalar(1), alpha));
  return a.ret(at::sub(a.t(0), a.t(1), alpha));
}
BINARY(mul, at::mul)
BINARY(div, at::div)
BINARY(pow, at::pow)
BINARY(remainder, at::remainder)
BINARY(eq, at::eq)
BINARY(ne, at::ne)
BINARY(lt, at::lt)
BINARY(le, at::le)
BINARY(gt, at::gt)
BINARY(ge, at::ge)
ZTW_OP(maximum) { return a.ret(at::maximum(a.t(0), a.t(1))); }
ZTW_OP(minimum) { return a.ret(at::minimum(a.t(0), a.t(1))); }
ZTW_OP(logicalAnd) { return a.ret(at::logical_and(a.t(0), a.t(1))); }
ZTW_OP(logicalOr) { return a.ret(at::logical_or(a.t(0), a.t(1))); }
ZTW_OP(rpow) { return a.ret(at::pow(a.scalar(0), a.t(1))); }  // number ** tensor

UNARY(neg, at::neg)
UNARY(exp, at::exp)
UNARY(log, at::log)
UNARY(log1p, at::log1p)
UNARY(sqrt, at::sqrt)
UNARY(rsqrt, at::rsqrt)
UNARY(abs, at::abs)
UNARY(sign, at::sign)
UNARY(floor, at::floor)
UNARY(ceil, at::ceil)
UNARY(round, at::round)
UNARY(reciprocal, at::reciprocal)
UNARY(square, at::square)
UNARY(sigmoid, at::sigmoid)
UNARY(tanh, at::tanh)
// relu(x, inPlace?): without autograd, a dense float32 CPU map goes through
// our own loop (kernels.h) into a tensor of its memory format: 1.97 -> 1.85
// us for one 16x32x32 map, 1.01 -> 0.73 for a 64x8x8 one, 72 -> 39 us for
// 128 of those. With inPlace (the caller gives x up) into x's own memory,
// returned as a new handle to it.
ZTW_OP(relu) {
  const auto& x = a.t(0);
  const bool grad = at::GradMode::is_enabled() && x.requires_grad();
  const auto fmt = DenseFormat(x);
  if (grad || x.scalar_type() != at::kFloat || !x.device().is_cpu() || !x.is_contiguous(fmt)) return a.ret(at::relu(x));
  const bool inPlace = a.has(1) && a.b(1);
  auto out = inPlace ? x : at::empty(x.sizes(), x.options().memory_format(fmt));
  ReluDense(x, out);
  return a.ret(out);
}
UNARY(logicalNot, at::logical_not)
UNARY(isnan, at::isnan)
UNARY(isfinite, at::isfinite)

// clamp(t, min|null, max|null)
ZTW_OP(clamp) {
  c10::optional<at::Scalar> lo, hi;
  if (a.has(1)) lo = a.scalar(1);
  if (a.has(2)) hi = a.scalar(2);
  if (!lo && !hi) throw ArgError("clamp needs a min or a max");
  return a.ret(at::clamp(a.t(0), lo, hi));
}

// where(cond, x, y): x and y may each be a number.
ZTW_OP(where) {
  auto& c = a.t(0);
  bool xs = IsScalarArg(a, 1), ys = IsScalarArg(a, 2);
  if (xs && ys) return a.ret(at::where(c, a.scalar(1), a.scalar(2)));
  if (xs) return a.ret(at::where(c, a.scalar(1), a.t(2)));
  if (ys) return a.ret(at::where(c, a.t(1), a.scalar(2)));
  return a.ret(at::where(c, a.t(1), a.t(2)));
}

ZTW_OP(maskedFill) { return a.ret(at::masked_fill(a.t(0), a.t(1), a.scalar(2))); }
// lerp(start, end, weight): weight a number or a tensor (broadcast).
ZTW_OP(lerp) { return a.ret(a.isNumber(2) ? at::lerp(a.t(0), a.t(1), a.scalar(2)) : at::lerp(a.t(0), a.t(1), a.t(2))); }
ZTW_OP(cast) { return a.ret(a.t(0).to(a.dtype(1))); }

// In place: they return nothing, the first tensor is updated.
ZTW_OP(add_) {
  at::Scalar alpha = a.has(2) ? a.scalar(2) : at::Scalar(1);
  if (IsScalarArg(a, 1)) a.t(0).add_(a.scalar(1), alpha); else a.t(0).add_(a.t(1), alpha);
  return a.undefined();
}
ZTW_OP(mul_) {
  if (IsScalarArg(a, 1)) a.t(0).mul_(a.scalar(1)); else a.t(0).mul_(a.t(1));
  return a.undefined();
}
ZTW_OP(div_) {
  if (IsScalarArg(a, 1)) a.t(0).div_(a.scalar(1)); else a.t(0).div_(a.t(1));
  return a.undefined();
}
ZTW_OP(addcmul_) { a.t(0).addcmul_(a.t(1), a.t(2), a.scalar(3)); return a.undefined(); }
ZTW_OP(addcdiv_) { a.t(0).addcdiv_(a.t(1), a.t(2), a.scalar(3)); return a.undefined(); }
ZTW_OP(lerp_) { a.t(0).lerp_(a.t(1), a.scalar(2)); return a.undefined(); }
ZTW_OP(copy_) { a.t(0).copy_(a.t(1)); return a.undefined(); }
ZTW_OP(zero_) { a.t(0).zero_(); return a.undefined(); }
ZTW_OP(fill_) { a.t(0).fill_(a.scalar(1)); return a.undefined(); }
ZTW_OP(clampMin_) { a.t(0).clamp_min_(a.scalar(1)); return a.undefined(); }
ZTW_OP(uniform_) { a.t(0).uniform_(a.d(1), a.d(2)); return a.undefined(); }
ZTW_OP(normal_) { a.t(0).normal_(a.d(1), a.d(2)); return a.undefined(); }
