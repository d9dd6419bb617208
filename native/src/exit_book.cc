#include "exit_book.h"
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include "op.h"

namespace ztw {

namespace {

// Every live book: an External argument is one of ours before it is used.
struct LiveBooks {
  std::mutex mutex;
  std::unordered_set<const ExitBook*> books;
};
LiveBooks& Live() {
  static LiveBooks live;
  return live;
}

// The data and length of a typed array of `type` (ArgError naming `what` otherwise).
template <class T>
std::pair<T*, size_t> TypedData(const Napi::Value& v, napi_typedarray_type type, const std::string& what) {
  napi_typedarray_type got;
  size_t length = 0;
  void* data = nullptr;
  if (!v.IsTypedArray() || napi_get_typedarray_info(v.Env(), v, &got, &length, &data, nullptr, nullptr) != napi_ok || got != type) throw ArgError(what);
  return {static_cast<T*>(data), length};
}

// Exactly n values of a typed array of `type`.
template <class T>
T* TypedData(const Napi::Value& v, napi_typedarray_type type, size_t n, const std::string& name, const std::string& wrongType) {
  const auto [data, length] = TypedData<T>(v, type, wrongType);
  if (length != n) throw ArgError(name + " holds " + std::to_string(length) + " values, " + std::to_string(n) + " expected");
  return data;
}

// Typed array `name` of `memory`: exactly n values of `type`.
template <class T>
T* TypedField(const Napi::Object& memory, const char* name, napi_typedarray_type type, size_t n) {
  const std::string field = std::string("exitBookNew: memory.") + name;
  return TypedData<T>(memory.Get(name), type, n, field, field + " has the wrong type");
}

// Argument i as n doubles (a Float64Array), or none when absent.
std::vector<double> Doubles(const Args& a, size_t i, size_t n, const char* what) {
  if (!a.has(i)) return {};
  const std::string name = std::string("exitBookNew: ") + what;
  const double* d = TypedData<double>(a.raw(i), napi_float64_array, n, name, name + " must be a Float64Array");
  return std::vector<double>(d, d + n);
}

// A probability from a float32 log-probability, as exitProbabilities rounds it.
inline float Prob(float logq) { return static_cast<float>(std::exp(static_cast<double>(logq))); }

// The first maximum of the probabilities Prob(q[k]) (torch.argmax's choice
// on ties) and its value, with one exp for most rows rather than K: Prob is
// monotone, so the answer is the first k whose Prob equals that of the
// largest q, and only a k before it with a q within float32 rounding of the
// largest can tie (for a normal float32 Prob, q's closer than ~1.2e-7 in
// absolute terms). With a NaN, or a largest Prob near float32's subnormals
// or its overflow (not a log-softmax's, whose largest is between 1/K and 1),
// every probability as the JS loop compares them.
inline int64_t Argmax(const float* q, int64_t K, float* scratch, float* top) {
  int64_t hi = 0;
  bool nan = q[0] != q[0];
  for (int64_t k = 1; k < K; k++) {
    nan |= q[k] != q[k];
    if (q[k] > q[hi]) hi = k;
  }
  if (nan || !(q[hi] >= -80.0f && q[hi] <= 80.0f)) {
    int64_t best = 0;
    for (int64_t k = 0; k < K; k++) scratch[k] = Prob(q[k]);
    for (int64_t k = 1; k < K; k++)
      if (scratch[k] > scratch[best]) best = k;
    *top = scratch[best];
    return best;
  }
  const float pHi = Prob(q[hi]);
  *top = pHi;
  const float near = q[hi] - (1e-5f + std::fabs(q[hi]) * 1e-5f);  // far wider than the rounding
  for (int64_t k = 0; k < hi; k++)
    if (q[k] >= near && Prob(q[k]) == pHi) return k;
  return hi;
}

}  // namespace

// See exit_book.h. Rows below `kept` that stay are found by stay[j] == j
// once placed: a place that is not theirs still holds an entry above j.
void FillOrder(int32_t* stay, int64_t kept, int32_t* tail) {
  int64_t p = kept;
  while (p > 0 && stay[p - 1] >= kept) p--;
  const int64_t q = kept - p;
  std::memcpy(tail, stay + p, sizeof(int32_t) * static_cast<size_t>(q));
  // Descending: stay[i] >= i, so each lands at or past its place, beyond every entry still to read.
  for (int64_t i = p - 1; i >= 0; i--) stay[stay[i]] = stay[i];
  for (int64_t j = 0, t = 0; t < q; j++)
    if (stay[j] != j) stay[j] = tail[t++];
}

ExitBook::ExitBook(int64_t N, int64_t K, int64_t M, std::vector<double> weights, std::vector<double> bias, std::vector<double> costs, const Napi::Object& memory)
    : N_(N), K_(K), M_(M), weights_(std::move(weights)), bias_(std::move(bias)), costs_(std::move(costs)), z_(K), q_(K), p_(K), tail_(N) {
  const auto n = static_cast<size_t>(N), k = static_cast<size_t>(K);
  store_ = TypedField<float>(memory, "store", napi_float32_array, static_cast<size_t>(M) * n * k);
  probs_ = TypedField<float>(memory, "probs", napi_float32_array, n * k);
  rows_ = TypedField<int32_t>(memory, "rows", napi_int32_array, n);
  stay_ = TypedField<int32_t>(memory, "stay", napi_int32_array, n);
  state_ = TypedField<int32_t>(memory, "state", napi_int32_array, 1);
  prediction_ = TypedField<int32_t>(memory, "prediction", napi_int32_array, n);
  exitIndex_ = TypedField<int32_t>(memory, "exitIndex", napi_int32_array, n);
  cost_ = TypedField<double>(memory, "cost", napi_float64_array, n);
  memory_ = Napi::Persistent(memory);
  std::lock_guard<std::mutex> lock(Live().mutex);
  Live().books.insert(this);
}

ExitBook::~ExitBook() {
  std::lock_guard<std::mutex> lock(Live().mutex);
  Live().books.erase(this);
}

ExitBook* ExitBook::From(const Napi::Value& v, size_t index) {
  auto* book = v.IsExternal() ? static_cast<ExitBook*>(v.As<Napi::External<void>>().Data()) : nullptr;
  std::lock_guard<std::mutex> lock(Live().mutex);
  if (!book || !Live().books.count(book)) throw ArgError("argument " + std::to_string(index) + ": expected an exit book (exitBookNew)");
  return book;
}

int64_t ExitBook::Step(int64_t m, const float* lp, int64_t n, double tau, bool final) {
  if (m == 0) {
    running_ = N_;
    next_ = 0;
    for (int64_t i = 0; i < N_; i++) rows_[i] = static_cast<int32_t>(i);
  }
  if (m < 0 || m >= M_) throw ArgError("exitBookStep: exit " + std::to_string(m) + " out of range (" + std::to_string(M_) + " exits)");
  if (m != next_) throw ArgError("exitBookStep: exit " + std::to_string(m) + " after exit " + std::to_string(next_ - 1) + " (exits run in order from 0)");
  if (n != running_) throw ArgError("exitBookStep: " + std::to_string(n) + " rows of log-probabilities, " + std::to_string(running_) + " samples running");
  const int64_t K = K_;
  float* member = store_ + m * N_ * K;
  for (int64_t i = 0; i < n; i++) std::memcpy(member + rows_[i] * K, lp + i * K, sizeof(float) * static_cast<size_t>(K));
  const float tauf = static_cast<float>(tau);  // as Math.fround: the rule compares in float32
  const bool ensemble = !weights_.empty();
  const double* w = ensemble ? weights_.data() + m * (m + 1) / 2 : nullptr;
  double* z = z_.data();
  float* q = q_.data();
  float* p = p_.data();
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    const int64_t r = rows_[i], src = r * K;
    if (ensemble) {
      // log-softmax of bias + sum_j w_j log p_j, in the JS combine's order.
      for (int64_t k = 0; k < K; k++) z[k] = bias_[m * K + k];
      for (int64_t j = 0; j <= m; j++) {
        const float* lj = store_ + j * N_ * K + src;
        const double wj = w[j];
        for (int64_t k = 0; k < K; k++) z[k] += wj * static_cast<double>(lj[k]);
      }
      double mx = -INFINITY;
      for (int64_t k = 0; k < K; k++)
        if (z[k] > mx) mx = z[k];
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += std::exp(z[k] - mx);
      const double lse = mx + std::log(s);
      for (int64_t k = 0; k < K; k++) q[k] = static_cast<float>(z[k] - lse);
    } else {
      std::memcpy(q, member + src, sizeof(float) * static_cast<size_t>(K));
    }
    float top;
    const int64_t arg = Argmax(q, K, p, &top);
    if (!final && !(top > tauf)) {
      stay_[kept++] = static_cast<int32_t>(i);
      continue;
    }
    for (int64_t k = 0; k < K; k++) p[k] = Prob(q[k]);
    prediction_[r] = static_cast<int32_t>(arg);
    exitIndex_[r] = static_cast<int32_t>(m);
    cost_[r] = costs_[m];
    std::memcpy(probs_ + src, p, sizeof(float) * static_cast<size_t>(K));
  }
  FillOrder(stay_, kept, tail_.data());
  for (int64_t j = 0; j < kept; j++) rows_[j] = rows_[stay_[j]];  // reads row j itself or one from `kept` on: in place
  running_ = kept;
  next_ = m + 1;
  state_[0] = static_cast<int32_t>(kept);
  return kept;
}

}  // namespace ztw

using namespace ztw;

// exitBookNew(N, K, M, weights: Float64Array | null, bias: Float64Array | null, costs: Float64Array,
//             memory: { store, probs, rows, stay, state, prediction, exitIndex, cost })
//   -> an opaque book for icHead and exitBookStep (freed with its last JS reference)
ZTW_OP(exitBookNew) {
  const int64_t N = a.i64(0), K = a.i64(1), M = a.i64(2);
  if (N < 1 || K < 1 || M < 1 || N > (int64_t{1} << 30) || K > (int64_t{1} << 20) || M > 4096) throw ArgError("exitBookNew: N, K and M must be positive (and of a sane size)");
  if (a.has(3) != a.has(4)) throw ArgError("exitBookNew: weights and bias come together");
  auto weights = Doubles(a, 3, static_cast<size_t>(M * (M + 1) / 2), "weights");
  auto bias = Doubles(a, 4, static_cast<size_t>(M * K), "bias");
  auto costs = Doubles(a, 5, static_cast<size_t>(M), "costs");
  if (costs.empty()) throw ArgError("exitBookNew: costs are required");
  if (!a.has(6) || !a.raw(6).IsObject()) throw ArgError("exitBookNew: memory must be an object of typed arrays");
  auto* book = new ExitBook(N, K, M, std::move(weights), std::move(bias), std::move(costs), a.raw(6).As<Napi::Object>());
  return Napi::External<ExitBook>::New(a.env(), book, [](Napi::Env, ExitBook* b) { delete b; });
}

// exitBookStep(book, m, logProbs: Float32Array [n * K], tau, final) -> the rows that stay (ExitBook::Step)
ZTW_OP(exitBookStep) {
  auto* book = ExitBook::From(a.raw(0), 0);
  const int64_t m = a.i64(1);
  const auto [lp, values] = TypedData<float>(a.raw(2), napi_float32_array, "exitBookStep: logProbs must be a Float32Array");
  if (values % static_cast<size_t>(book->K()) != 0) throw ArgError("exitBookStep: " + std::to_string(values) + " log-probabilities are not rows of " + std::to_string(book->K()));
  return a.ret(static_cast<double>(book->Step(m, lp, static_cast<int64_t>(values) / book->K(), a.d(3), a.b(4))));
}
