// What every CPU kernel here shares: the vector type of this machine's
// widest registers, unaligned loads and stores, exp, and a parallel loop on
// XLA's intra-op threads. Included (not linked): each kernel is its own .so.

#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

#if defined(__AVX512F__)
constexpr int kWidth = 16;  // floats per vector register
#else
constexpr int kWidth = 8;
#endif

typedef float Vec __attribute__((vector_size(kWidth * sizeof(float))));
typedef float UVec __attribute__((vector_size(kWidth * sizeof(float)), aligned(sizeof(float))));
typedef int32_t IVec __attribute__((vector_size(kWidth * sizeof(int32_t))));

inline Vec Load(const float* p) { return *reinterpret_cast<const UVec*>(p); }
inline void Store(float* p, Vec v) { *reinterpret_cast<UVec*>(p) = v; }

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// C[R, V * kWidth] (+)= A[R, K] B[K, V * kWidth], with A[r, k] at A[r * sr + k * sk]
// (so A may be a transposed view) and rows of B and C ldb and ldc apart.
template <int R, int V>
void Tile(int64_t K, const float* A, int64_t sr, int64_t sk, const float* B, int64_t ldb,
          float* C, int64_t ldc, bool add) {
  Vec acc[R][V] = {};
  for (int64_t k = 0; k < K; ++k) {
    Vec b[V];
    for (int j = 0; j < V; ++j) b[j] = Load(B + k * ldb + j * kWidth);
    for (int r = 0; r < R; ++r) {
      const float a = A[r * sr + k * sk];
      for (int j = 0; j < V; ++j) acc[r][j] += b[j] * a;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j) {
      float* c = C + r * ldc + j * kWidth;
      Store(c, add ? Load(c) + acc[r][j] : acc[r][j]);
    }
}

using TileFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*,
                        int64_t, bool);

template <int R, int... V>
constexpr std::array<TileFn, sizeof...(V)> RowOfTiles(std::integer_sequence<int, V...>) {
  return {&Tile<R, V + 1>...};
}

template <int Vecs, int... R>
constexpr std::array<std::array<TileFn, Vecs>, sizeof...(R)> TableOfTiles(
    std::integer_sequence<int, R...>) {
  return {RowOfTiles<R + 1>(std::make_integer_sequence<int, Vecs>())...};
}

// TileTable<Rows, Vecs>()[r - 1][v - 1] is Tile<r, v>: the tile for a product's edges.
template <int Rows, int Vecs>
constexpr auto TileTable() {
  return TableOfTiles<Vecs>(std::make_integer_sequence<int, Rows>());
}

// exp(x) to about 1 ulp: 2^n e^f with |f| <= ln(2)/2 and a degree-6
// polynomial for e^f (Cephes expf's coefficients). x is clamped to
// [-87.3, 88], which keeps 2^n a normal float (e^-87 is 0 for a softmax).
inline Vec Exp(Vec x) {
  x = x < -87.3f ? Vec{} - 87.3f : x;
  x = x > 88.0f ? Vec{} + 88.0f : x;
  const Vec y = x * 1.44269504088896341f + 0.5f;
  Vec n = __builtin_convertvector(__builtin_convertvector(y, IVec), Vec);
  n = n > y ? n - 1.0f : n;  // floor: the conversion truncates toward zero
  const Vec f = x - n * 0.693359375f + n * 2.12194440e-4f;
  Vec p = Vec{} + 1.9875691500E-4f;
  p = p * f + 1.3981999507E-3f;
  p = p * f + 8.3334519073E-3f;
  p = p * f + 4.1665795894E-2f;
  p = p * f + 1.6666665459E-1f;
  p = p * f + 5.0000001201E-1f;
  p = p * f * f + f + 1.0f;
  const IVec bits = (__builtin_convertvector(n, IVec) + 127) << 23;
  Vec scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// body(i) for i in [0, n) on XLA's intra-op threads and this one. Tasks that
// start after the work is handed out touch nothing but the shared state, so
// returning while one is still queued is safe.
template <typename F>
void ParallelFor(ffi::ThreadPool& pool, int64_t n, const F& body) {
  struct State {
    std::atomic<int64_t> next{0};
    std::mutex mu;
    std::condition_variable done;
    int64_t active = 0;
    bool closed = false;
  };
  auto state = std::make_shared<State>();
  const F* fn = &body;
  auto work = [state, fn, n]() {
    {
      std::lock_guard<std::mutex> lock(state->mu);
      if (state->closed) return;
      ++state->active;
    }
    for (int64_t i; (i = state->next.fetch_add(1)) < n;) (*fn)(i);
    std::lock_guard<std::mutex> lock(state->mu);
    if (--state->active == 0) state->done.notify_all();
  };
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), n) - 1;
  for (int64_t i = 0; i < helpers; ++i) pool.Schedule(decltype(work)(work));
  work();
  std::unique_lock<std::mutex> lock(state->mu);
  state->closed = true;
  state->done.wait(lock, [&] { return state->active == 0; });
}

}  // namespace
