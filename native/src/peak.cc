// The machine's FP32 FMA peak, measured: independent chains of vector FMAs
// on every thread of the pool, for benchmarks to say what fraction of it a
// kernel reaches. engine-facts.md's 229 GFLOP/s on 2 cores was an AVX2 loop;
// these cores run two AVX-512 FMAs per cycle, twice that, which the forward
// passes exceeded (160-179% "of peak" in earlier bench:engine tables).
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include "op.h"
#include "conv16.h"

namespace {

// 12 chains: more than FMA latency x ports (4 x 2) keeps both ports busy.
constexpr int kChains = 12;

#pragma GCC push_options
#pragma GCC target("avx512f")
float ChainsAvx512(int64_t steps) {
  __m512 acc[kChains];
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < kChains; i++) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  for (int64_t s = 0; s < steps; s++)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; i++) sum = _mm512_add_ps(sum, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  float s = 0;
  for (float v : lanes) s += v;
  return s;
}
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
float ChainsAvx2(int64_t steps) {
  __m256 acc[kChains];
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < kChains; i++) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  for (int64_t s = 0; s < steps; s++)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; i++) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float s = 0;
  for (float v : lanes) s += v;
  return s;
}
#pragma GCC pop_options

}  // namespace

// fmaPeak(rounds) -> { gflops, isa, threads, workers }: the best of `rounds`
// timed runs (~20 ms each) of FMA chains on all of at::get_num_threads()
// threads, with the widest vectors the CPU has (AVX-512, else AVX2 with
// FMA); workers: how many distinct pool threads ran chains (a fact a test
// can check, where a speed ratio on a shared machine is not).
ZTW_OP(fmaPeak) {
  const int64_t rounds = a.has(0) ? a.i64(0) : 5;
  if (rounds < 1 || rounds > 1000) throw ztw::ArgError("rounds must be 1 to 1000, got " + std::to_string(rounds));
  const bool avx512 = ztw::HasAvx512();
  if (!avx512 && !__builtin_cpu_supports("fma")) throw ztw::ArgError("the CPU has no FMA instructions");
  const int threads = at::get_num_threads();
  const int lanes = avx512 ? 16 : 8;
  const int64_t steps = avx512 ? 10000000 : 20000000;
  std::atomic<float> sink{0};
  std::atomic<uint64_t> ran{0};  // a bit per pool thread that ran chains
  double best = 0;
  for (int64_t r = 0; r <= rounds; r++) {  // round 0 wakes the threads and the clocks
    const auto t0 = std::chrono::steady_clock::now();
    at::parallel_for(0, threads, 1, [&](int64_t b, int64_t e) {
      ran.fetch_or(uint64_t{1} << (at::get_thread_num() % 64));
      for (int64_t i = b; i < e; i++) {
        const float v = avx512 ? ChainsAvx512(steps) : ChainsAvx2(steps);
        float old = sink.load();
        while (!sink.compare_exchange_weak(old, old + v)) {
        }
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::max(best, 2.0 * lanes * kChains * static_cast<double>(steps) * threads / s / 1e9);
  }
  auto out = Napi::Object::New(a.env());
  out.Set("gflops", best);
  out.Set("isa", avx512 ? "avx512" : "avx2");
  out.Set("threads", threads);
  out.Set("workers", __builtin_popcountll(ran.load()));
  out.Set("sink", static_cast<double>(sink.load()));  // keeps the chains' results alive
  return out;
}
