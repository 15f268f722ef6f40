// The LSTM's time loop for XLA:CPU, forward and backward, called through the XLA FFI.
//
// Why a kernel: in XLA's scan each time step is a [B, H] @ [H, 4H] product
// and a separate fusion for the gates, with the [B, 4H] gate pre-activations
// written to memory between them; at B = 32..64 XLA:CPU runs that product on
// one thread, and the loop's own bookkeeping costs about as much as the
// gates. Here the batch rows are split over XLA's intra-op threads (rows are
// independent, so a thread runs all T steps of its rows with no
// synchronisation), and each register tile of the product holds the i, f, g
// and o pre-activations of the same kWidth units, so the cell update runs on
// the registers the product just filled.
//
// Layout (row-major float32, gate order i, f, g, o as PyTorch's nn.LSTM):
//   gx [T, B, 4H] = x @ W_ih, b [4H], w_hh [H, 4H];
//   forward  -> hs, cs [T, B, H] and acts [T, B, 4H] (sigmoid(i), sigmoid(f), tanh(g), sigmoid(o));
//   backward (cs, acts, w_hh, dhs [T, B, H]) -> dgates [T, B, 4H], the
//   gradient of the pre-activations (dW_hh, db and dx are left to XLA: one
//   large product each).
// H must be a multiple of kWidth (checked by the caller, cpu_lstm.py).

#include <vector>

#include "simd.h"

namespace {

// Rows per register tile: R x 4 accumulators plus 4 loaded vectors of W stay
// within the 32 (AVX-512) or 16 (AVX2) vector registers.
constexpr int kRows = kWidth == 16 ? 6 : 3;
constexpr int kVecs = 4;  // columns per tile of the backward product, in vectors

inline Vec Sigmoid(Vec x) { return 1.0f / (1.0f + Exp(-x)); }
inline Vec Tanh(Vec x) { return 2.0f / (1.0f + Exp(-2.0f * x)) - 1.0f; }

// w [H, 4H] -> p[u][k][q][lane] = w[k][q * H + u * kWidth + lane]: the block of
// unit group u holds, for every k, its kWidth units' four gate columns side by side.
void PackByUnits(const float* w, int64_t H, float* p) {
  for (int64_t u = 0; u < H / kWidth; ++u)
    for (int64_t k = 0; k < H; ++k)
      for (int q = 0; q < 4; ++q)
        std::memcpy(p + ((u * H + k) * 4 + q) * kWidth, w + k * 4 * H + q * H + u * kWidth,
                    kWidth * sizeof(float));
}

// w [H, 4H] -> W^T [4H, H] in column blocks of kVecs vectors (the last one
// narrower): block n is [4H, width_n], at 4H * n * kVecs * kWidth.
void PackTransposed(const float* w, int64_t H, float* p) {
  const int64_t K = 4 * H, step = kVecs * kWidth;
  for (int64_t n0 = 0; n0 < H; n0 += step) {
    const int64_t width = std::min(step, H - n0);
    float* block = p + K * n0;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < width; ++j) block[k * width + j] = w[(n0 + j) * K + k];
  }
}

// One step of R rows for unit group u: gates = gx + b + h_prev @ w_hh (h_prev
// null: the zero state), then c = f c_prev + i g, h = o tanh(c). Row pointers
// are the tile's first row; rows are H (h, c) and 4H (gx, act) apart.
template <int R>
void ForwardTile(int64_t H, int64_t u, const float* packed, const float* bias, const float* gx,
                 const float* h_prev, const float* c_prev, float* h, float* c, float* act) {
  const int64_t col = u * kWidth, G = 4 * H;
  Vec acc[R][4];
  for (int q = 0; q < 4; ++q) {
    const Vec bq = Load(bias + q * H + col);
    for (int r = 0; r < R; ++r) acc[r][q] = Load(gx + r * G + q * H + col) + bq;
  }
  if (h_prev != nullptr) {
    const float* w = packed + u * H * 4 * kWidth;
    for (int64_t k = 0; k < H; ++k, w += 4 * kWidth) {
      Vec wq[4];
      for (int q = 0; q < 4; ++q) wq[q] = Load(w + q * kWidth);
      for (int r = 0; r < R; ++r) {
        const float a = h_prev[r * H + k];
        for (int q = 0; q < 4; ++q) acc[r][q] += wq[q] * a;
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const Vec i = Sigmoid(acc[r][0]), f = Sigmoid(acc[r][1]), g = Tanh(acc[r][2]),
              o = Sigmoid(acc[r][3]);
    const Vec cn = c_prev != nullptr ? f * Load(c_prev + r * H + col) + i * g : i * g;
    Store(c + r * H + col, cn);
    Store(h + r * H + col, o * Tanh(cn));
    float* a = act + r * G + col;
    Store(a, i);
    Store(a + H, f);
    Store(a + 2 * H, g);
    Store(a + 3 * H, o);
  }
}

using ForwardFn = void (*)(int64_t, int64_t, const float*, const float*, const float*, const float*,
                           const float*, float*, float*, float*);

template <int... R>
constexpr std::array<ForwardFn, kRows> ForwardTiles(std::integer_sequence<int, R...>) {
  return {&ForwardTile<R + 1>...};
}
constexpr auto kForward = ForwardTiles(std::make_integer_sequence<int, kRows>());

constexpr auto kProduct = TileTable<kRows, kVecs>();  // kProduct[r - 1][v - 1] is Tile<r, v>

// Rows [r0, r1) of the batch, all T steps.
void ForwardRows(int64_t T, int64_t B, int64_t H, int64_t r0, int64_t r1, const float* packed,
                 const float* bias, const float* gx, float* hs, float* cs, float* acts) {
  const int64_t G = 4 * H;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t now = t * B, before = (t - 1) * B;
    for (int64_t u = 0; u < H / kWidth; ++u)
      for (int64_t m = r0; m < r1; m += kRows) {
        const int r = static_cast<int>(std::min<int64_t>(kRows, r1 - m));
        kForward[r - 1](H, u, packed, bias, gx + (now + m) * G, t ? hs + (before + m) * H : nullptr,
                        t ? cs + (before + m) * H : nullptr, hs + (now + m) * H, cs + (now + m) * H,
                        acts + (now + m) * G);
      }
  }
}

// Rows [r0, r1), T steps in reverse: the gate gradients, then dh_{t-1} = dgates_t @ W_hh^T.
void BackwardRows(int64_t T, int64_t B, int64_t H, int64_t r0, int64_t r1, const float* packed_t,
                  const float* cs, const float* acts, const float* dhs, float* dgates) {
  const int64_t G = 4 * H, rows = r1 - r0;
  thread_local std::vector<float> scratch;
  scratch.assign(2 * rows * H, 0.0f);
  float *dh_next = scratch.data(), *dc_next = dh_next + rows * H;
  for (int64_t t = T - 1; t >= 0; --t) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = t * B + r0 + r;
      const float *a = acts + row * G, *c = cs + row * H, *dy = dhs + row * H;
      const float* c_prev = t ? cs + (row - B) * H : nullptr;
      float* dg = dgates + row * G;
      for (int64_t j = 0; j < H; j += kWidth) {
        const Vec i = Load(a + j), f = Load(a + H + j), g = Load(a + 2 * H + j), o = Load(a + 3 * H + j);
        const Vec dh = Load(dy + j) + Load(dh_next + r * H + j);
        const Vec tc = Tanh(Load(c + j));
        const Vec dc = Load(dc_next + r * H + j) + dh * o * (1.0f - tc * tc);
        const Vec cp = c_prev != nullptr ? Load(c_prev + j) : Vec{};
        Store(dg + j, dc * g * i * (1.0f - i));
        Store(dg + H + j, dc * cp * f * (1.0f - f));
        Store(dg + 2 * H + j, dc * i * (1.0f - g * g));
        Store(dg + 3 * H + j, dh * tc * o * (1.0f - o));
        Store(dc_next + r * H + j, dc * f);
      }
    }
    if (t == 0) break;
    const float* dg = dgates + (t * B + r0) * G;
    for (int64_t n0 = 0; n0 < H; n0 += kVecs * kWidth) {
      const int64_t width = std::min<int64_t>(kVecs * kWidth, H - n0);
      const int v = static_cast<int>(width / kWidth);
      for (int64_t m = 0; m < rows; m += kRows) {
        const int r = static_cast<int>(std::min<int64_t>(kRows, rows - m));
        kProduct[r - 1][v - 1](G, dg + m * G, G, 1, packed_t + G * n0, width, dh_next + m * H + n0, H,
                               false);
      }
    }
  }
}

// The batch in one contiguous share of rows per thread.
template <typename F>
void OverRows(ffi::ThreadPool& pool, int64_t B, const F& rows) {
  const int64_t shares = std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), B));
  const int64_t per = (B + shares - 1) / shares;
  ParallelFor(pool, shares, [&](int64_t s) {
    const int64_t r0 = s * per, r1 = std::min(B, r0 + per);
    if (r0 < r1) rows(r0, r1);
  });
}

ffi::Error CheckShapes(int64_t H, int64_t G) {
  if (H % kWidth != 0 || G != 4 * H)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "LSTM kernel: hidden size must be a multiple of the vector width and gx 4x it");
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> gx, ffi::Buffer<ffi::F32> b,
                   ffi::Buffer<ffi::F32> w_hh, ffi::ResultBuffer<ffi::F32> hs,
                   ffi::ResultBuffer<ffi::F32> cs, ffi::ResultBuffer<ffi::F32> acts) {
  auto dims = gx.dimensions();
  const int64_t T = dims[0], B = dims[1], H = w_hh.dimensions()[0];
  if (ffi::Error e = CheckShapes(H, dims[2]); e.failure()) return e;
  std::vector<float> packed(4 * H * H);
  PackByUnits(w_hh.typed_data(), H, packed.data());
  OverRows(pool, B, [&](int64_t r0, int64_t r1) {
    ForwardRows(T, B, H, r0, r1, packed.data(), b.typed_data(), gx.typed_data(), hs->typed_data(),
                cs->typed_data(), acts->typed_data());
  });
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> cs, ffi::Buffer<ffi::F32> acts,
                    ffi::Buffer<ffi::F32> w_hh, ffi::Buffer<ffi::F32> dhs,
                    ffi::ResultBuffer<ffi::F32> dgates) {
  auto dims = acts.dimensions();
  const int64_t T = dims[0], B = dims[1], H = w_hh.dimensions()[0];
  if (ffi::Error e = CheckShapes(H, dims[2]); e.failure()) return e;
  std::vector<float> packed(4 * H * H);
  PackTransposed(w_hh.typed_data(), H, packed.data());
  OverRows(pool, B, [&](int64_t r0, int64_t r1) {
    BackwardRows(T, B, H, r0, r1, packed.data(), cs.typed_data(), acts.typed_data(), dhs.typed_data(),
                 dgates->typed_data());
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnagenLstmForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // gx
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_hh
                                  .Ret<ffi::Buffer<ffi::F32>>()  // hs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // cs
                                  .Ret<ffi::Buffer<ffi::F32>>());  // acts

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnagenLstmBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // cs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // acts
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_hh
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dhs
                                  .Ret<ffi::Buffer<ffi::F32>>());  // dgates
