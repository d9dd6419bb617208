#include "winograd.h"
#include "weight_cache.h"

namespace ztw {

namespace {

// OIHW [O, C, 3, 3] as U = G g G^T, [16][C][O], with
// G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
void Transform(const float* w, float* U, int64_t O, int64_t C) {
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++) {
      const float* g = w + (o * C + c) * 9;
      double gg[4][3];  // G g
      for (int j = 0; j < 3; j++) {
        gg[0][j] = g[j];
        gg[1][j] = 0.5 * (static_cast<double>(g[j]) + g[3 + j] + g[6 + j]);
        gg[2][j] = 0.5 * (static_cast<double>(g[j]) - g[3 + j] + g[6 + j]);
        gg[3][j] = g[6 + j];
      }
      for (int i = 0; i < 4; i++) {
        const double u[4] = {gg[i][0], 0.5 * (gg[i][0] + gg[i][1] + gg[i][2]), 0.5 * (gg[i][0] - gg[i][1] + gg[i][2]), gg[i][2]};
        for (int j = 0; j < 4; j++) U[((i * 4 + j) * C + c) * O + o] = static_cast<float>(u[j]);
      }
    }
}

DerivedWeights& TheCache() {
  static DerivedWeights c(16, Transform);
  return c;
}

}  // namespace

const float* WinogradWeights(const at::Tensor& w) { return TheCache().For(w); }

void ClearWinogradCache() { TheCache().Clear(); }

}  // namespace ztw
