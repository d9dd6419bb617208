// Autograd: leaves, backward, gradients, and the grad-mode switch that
// TypeScript's noGrad() scope flips around a block.
#include "op.h"

using namespace ztw;

ZTW_OP(setRequiresGrad) { a.t(0).requires_grad_(a.b(1)); return a.undefined(); }
ZTW_OP(requiresGrad) { return a.retBool(a.t(0).requires_grad()); }
ZTW_OP(isLeaf) { return a.retBool(a.t(0).is_leaf()); }
// backward(t, grad?, retainGraph)
ZTW_OP(backward) {
  auto g = a.optT(1);
  bool retain = a.has(2) && a.b(2);
  a.t(0).backward(g ? *g : at::Tensor(), retain);
  return a.undefined();
}
ZTW_OP(grad) {
  auto g = a.t(0).grad();
  if (!g.defined()) return a.undefined();
  return a.ret(g);
}
// setGrad(t, g | undefined): undefined drops the gradient.
ZTW_OP(setGrad) {
  a.t(0).mutable_grad() = a.has(1) ? a.t(1) : at::Tensor();
  return a.undefined();
}
ZTW_OP(detach) { return a.ret(a.t(0).detach()); }
ZTW_OP(setGradEnabled) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(a.b(0));
  return a.retBool(prev);
}
ZTW_OP(isGradEnabled) { return a.retBool(c10::GradMode::is_enabled()); }
// In-place updates bump a tensor's version: caches of derived values (folded
// batch-norm weights) compare it to know when to recompute.
ZTW_OP(version) { return a.ret(static_cast<double>(a.t(0)._version())); }
// versions(handles[]): every tensor's version in one crossing (caches of derived tensors check several per call).
ZTW_OP(versions) {
  std::vector<int64_t> out;
  for (const auto& t : a.tensors(0)) out.push_back(static_cast<int64_t>(t._version()));
  return a.ret(out);
}
// versionsMatch(handles[], versions Float64Array): whether every tensor still
// has the version given. The check a cache makes on every use: no array comes
// back (versions() took ~1 us of a ~20 us batch-1 convolution, mostly that).
ZTW_OP(versionsMatch) {
  const auto ts = a.tensors(0);
  if (!a.has(1) || !a.raw(1).IsTypedArray() || a.raw(1).As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw ArgError("argument 1: expected a Float64Array of versions");
  auto want = a.raw(1).As<Napi::Float64Array>();
  if (want.ElementLength() != ts.size()) throw ArgError("argument 1: " + std::to_string(want.ElementLength()) + " versions for " + std::to_string(ts.size()) + " tensors");
  for (size_t i = 0; i < ts.size(); i++)
    if (static_cast<double>(ts[i]._version()) != want[i]) return a.retBool(false);
  return a.retBool(true);
}
