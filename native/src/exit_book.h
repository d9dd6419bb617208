// The early-exit runtime's bookkeeping in native code: after each exit, the
// exit's log-probabilities are filed by batch position, the exit's ensemble
// (ZTW's geometric one, or the exit on its own) is turned into
// probabilities, the confidence rule decides, the samples that leave are
// answered and the running rows narrowed. The batch-1 runtime spent ~13 us an
// image on this in JS (~1.3 us an exit among native convolutions, 0.6 in a
// loop of its own); a head's native call now does it on its way out.
//
// Its numbers equal the JS ExitBook's (src/runtime/onnx-core.ts) and the
// offline evaluator's: the same float64 sums in the same order, no fused
// multiply-adds (the addon is built for the baseline x86-64, without FMA),
// float32 where they round. Only exp and log come from glibc rather than
// V8; a result differs only where the two disagree in the last bit of a
// double and that bit changes the float32 rounding.
#pragma once
#include <napi.h>
#include <cstdint>
#include <vector>

namespace ztw {

// The books' order of the rows that stay, from their ascending positions
// stay[0..kept): a row below `kept` keeps its place, and each place a
// leaving row frees goes to a row from `kept` on, in ascending order (so
// that takeRows inPlace moves only those). tail: room for `kept` entries.
// The JS ExitBook orders them the same (fillOrder in onnx-core.ts).
void FillOrder(int32_t* stay, int64_t kept, int32_t* tail);

class ExitBook {
 public:
  // N samples, K classes, M exits; weights: exit m's m + 1 member weights at
  // m (m + 1) / 2 and bias: its K values at m K (both empty: no ensemble);
  // costs: M. The typed arrays of `memory` (see exitBookNew) stay referenced.
  ExitBook(int64_t N, int64_t K, int64_t M, std::vector<double> weights, std::vector<double> bias, std::vector<double> costs, const Napi::Object& memory);
  ~ExitBook();
  ExitBook(const ExitBook&) = delete;
  ExitBook& operator=(const ExitBook&) = delete;

  // Exit m's log-probabilities of the n running rows ([n * K]): answers the
  // rows that leave (all of them when final), narrows the running rows to the
  // others, writes their positions among the running rows (in FillOrder) to `stay` and
  // their count to state[0], and returns it. Exit 0 starts a pass over the
  // whole batch; any other exit must follow the previous one.
  int64_t Step(int64_t m, const float* logProbs, int64_t n, double tau, bool final);

  // The book an External argument holds (ArgError otherwise).
  static ExitBook* From(const Napi::Value& v, size_t index);

  int64_t K() const { return K_; }
  // The positions Step wrote (its return value long).
  const int32_t* Stay() const { return stay_; }

 private:
  const int64_t N_, K_, M_;
  const std::vector<double> weights_, bias_, costs_;
  Napi::ObjectReference memory_;  // keeps the typed arrays below alive
  float *store_, *probs_;
  int32_t *rows_, *stay_, *state_, *prediction_, *exitIndex_;
  double* cost_;
  int64_t running_ = 0, next_ = 0;
  std::vector<double> z_;
  std::vector<float> q_, p_;
  std::vector<int32_t> tail_;
};

}  // namespace ztw
