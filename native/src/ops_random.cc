// Random numbers from libtorch's default generator (seeded by manualSeed).
#include "op.h"

using namespace ztw;

static at::TensorOptions Opts(at::ScalarType t) { return at::TensorOptions().dtype(t); }

ZTW_OP(rand) { return a.ret(torch::rand(a.ints(0), Opts(a.dtype(1)))); }
ZTW_OP(randn) { return a.ret(torch::randn(a.ints(0), Opts(a.dtype(1)))); }
ZTW_OP(randint) { return a.ret(torch::randint(a.i64(0), a.i64(1), a.ints(2), Opts(a.dtype(3, at::kLong)))); }
ZTW_OP(randperm) { return a.ret(torch::randperm(a.i64(0), Opts(at::kLong))); }
// bernoulli(probs) or bernoulli(t, p): 0/1 samples of t's shape.
ZTW_OP(bernoulli) {
  if (a.has(1)) return a.ret(at::bernoulli(a.t(0), a.d(1)));
  return a.ret(at::bernoulli(a.t(0)));
}
ZTW_OP(multinomial) { return a.ret(at::multinomial(a.t(0), a.i64(1), a.has(2) && a.b(2))); }
