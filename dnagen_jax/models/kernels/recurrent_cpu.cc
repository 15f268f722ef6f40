// The LSTM's and the GRU's time loops for XLA:CPU, forward and backward, called through the XLA FFI.
//
// Why a kernel: in XLA's scan each time step is a [B, H] @ [H, G*H] product
// and a separate fusion for the gates, with the [B, G*H] pre-activations
// written to memory between them; at B = 32..64 XLA:CPU runs that product on
// one thread, and the loop's own bookkeeping costs about as much as the
// gates. Here the batch rows are split over XLA's intra-op threads (rows are
// independent, so a thread runs all T steps of its rows with no
// synchronisation), and each register tile of the product holds all G gate
// pre-activations of the same kWidth units, so the cell update runs on the
// registers the product just filled.
//
// Layout (row-major float32; gate order as PyTorch's nn.LSTM / nn.GRU):
//   LSTM (G = 4: i, f, g, o): gx [T, B, 4H] = x @ W_ih, b [4H], w_hh [H, 4H];
//     forward  -> hs, cs [T, B, H], acts [T, B, 4H] (sigmoid i, sigmoid f, tanh g, sigmoid o);
//     backward (cs, acts, w_hh, dhs [T, B, H]) -> dgates [T, B, 4H].
//   GRU (G = 3: r, z, n): gx [T, B, 3H], b [3H], w_hh [H, 3H], b_hn [H];
//     forward  -> hs [T, B, H], res [T, B, 4H] (r, z, n, h @ W_hn + b_hn);
//     backward (hs, res, w_hh, dhs) -> d gx [T, B, 3H], d (h @ W_hh) [T, B, 3H].
// dW_hh, the biases' and dx's gradients are left to XLA: one large product
// or sum each. H must be a multiple of kWidth (checked by cpu_recurrent.py).

#include <vector>

#include "simd.h"

namespace {

// Rows per register tile of the forward product: R x G accumulators plus G
// loaded vectors of W stay within the 32 (AVX-512) or 16 (AVX2) registers.
constexpr int kLstmRows = kWidth == 16 ? 6 : 3;
constexpr int kGruRows = kWidth == 16 ? 8 : 4;
// The backward product dh = dgates @ W_hh^T: tiles of up to kRows x kVecs vectors.
constexpr int kRows = kWidth == 16 ? 6 : 3;
constexpr int kVecs = 4;
constexpr auto kProduct = TileTable<kRows, kVecs>();  // kProduct[r - 1][v - 1] is Tile<r, v>

inline Vec Sigmoid(Vec x) { return 1.0f / (1.0f + Exp(-x)); }
inline Vec Tanh(Vec x) { return 2.0f / (1.0f + Exp(-2.0f * x)) - 1.0f; }

// w [H, G*H] -> p[u][k][q][lane] = w[k][q * H + u * kWidth + lane]: the block of
// unit group u holds, for every k, its kWidth units' G gate columns side by side.
std::vector<float> PackByUnits(const float* w, int64_t H, int G) {
  std::vector<float> p(G * H * H);
  for (int64_t u = 0; u < H / kWidth; ++u)
    for (int64_t k = 0; k < H; ++k)
      for (int q = 0; q < G; ++q)
        std::memcpy(p.data() + ((u * H + k) * G + q) * kWidth, w + k * G * H + q * H + u * kWidth,
                    kWidth * sizeof(float));
  return p;
}

// w [H, G*H] -> W^T [G*H, H] in column blocks of kVecs vectors (the last one
// narrower): block n0 is [G*H, width], at G*H * n0.
std::vector<float> PackTransposed(const float* w, int64_t H, int G) {
  const int64_t K = G * H, step = kVecs * kWidth;
  std::vector<float> p(K * H);
  for (int64_t n0 = 0; n0 < H; n0 += step) {
    const int64_t width = std::min(step, H - n0);
    float* block = p.data() + K * n0;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < width; ++j) block[k * width + j] = w[(n0 + j) * K + k];
  }
  return p;
}

// out[rows, H] (+)= dg[rows, G*H] @ W^T, W^T packed by PackTransposed; rows of out are H apart.
void ProductTransposed(int64_t rows, int64_t H, int G, const float* dg, const float* packed_t,
                       float* out, bool add) {
  const int64_t K = G * H;
  for (int64_t n0 = 0; n0 < H; n0 += kVecs * kWidth) {
    const int64_t width = std::min<int64_t>(kVecs * kWidth, H - n0);
    const int v = static_cast<int>(width / kWidth);
    for (int64_t m = 0; m < rows; m += kRows) {
      const int r = static_cast<int>(std::min<int64_t>(kRows, rows - m));
      kProduct[r - 1][v - 1](K, dg + m * K, K, 1, packed_t + K * n0, width, out + m * H + n0, H, add);
    }
  }
}

// acc[r][q] += h_prev[r, :] @ (unit group u's gate q columns), for R rows H apart.
template <int R, int G>
inline void AddProduct(int64_t H, int64_t u, const float* packed, const float* h_prev, Vec (&acc)[R][G]) {
  const float* w = packed + u * H * G * kWidth;
  for (int64_t k = 0; k < H; ++k, w += G * kWidth) {
    Vec wq[G];
    for (int q = 0; q < G; ++q) wq[q] = Load(w + q * kWidth);
    for (int r = 0; r < R; ++r) {
      const float a = h_prev[r * H + k];
      for (int q = 0; q < G; ++q) acc[r][q] += wq[q] * a;
    }
  }
}

// ---------------------------------------------------------------- LSTM

// One step of R rows for unit group u: gates = gx + b + h_prev @ w_hh (h_prev
// null: the zero state), then c = f c_prev + i g, h = o tanh(c). Row pointers
// are the tile's first row; rows are H (h, c) and 4H (gx, act) apart.
template <int R>
void LstmTile(int64_t H, int64_t u, const float* packed, const float* bias, const float* gx,
              const float* h_prev, const float* c_prev, float* h, float* c, float* act) {
  const int64_t col = u * kWidth, G = 4 * H;
  Vec acc[R][4];
  for (int q = 0; q < 4; ++q) {
    const Vec bq = Load(bias + q * H + col);
    for (int r = 0; r < R; ++r) acc[r][q] = Load(gx + r * G + q * H + col) + bq;
  }
  if (h_prev != nullptr) AddProduct<R, 4>(H, u, packed, h_prev, acc);
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

using LstmTileFn = void (*)(int64_t, int64_t, const float*, const float*, const float*, const float*,
                            const float*, float*, float*, float*);
template <int... R>
constexpr std::array<LstmTileFn, sizeof...(R)> LstmTiles(std::integer_sequence<int, R...>) {
  return {&LstmTile<R + 1>...};
}
constexpr auto kLstmTiles = LstmTiles(std::make_integer_sequence<int, kLstmRows>());

// Rows [r0, r1) of the batch, all T steps.
void LstmForwardRows(int64_t T, int64_t B, int64_t H, int64_t r0, int64_t r1, const float* packed,
                     const float* bias, const float* gx, float* hs, float* cs, float* acts) {
  const int64_t G = 4 * H;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t now = t * B, before = (t - 1) * B;
    // Unit groups outer: one group's 64 KB of W (H = 256) is reused by every row tile.
    for (int64_t u = 0; u < H / kWidth; ++u)
      for (int64_t m = r0; m < r1; m += kLstmRows) {
        const int r = static_cast<int>(std::min<int64_t>(kLstmRows, r1 - m));
        kLstmTiles[r - 1](H, u, packed, bias, gx + (now + m) * G, t ? hs + (before + m) * H : nullptr,
                          t ? cs + (before + m) * H : nullptr, hs + (now + m) * H, cs + (now + m) * H,
                          acts + (now + m) * G);
      }
  }
}

// Rows [r0, r1), T steps in reverse: the gate gradients, then dh_{t-1} = dgates_t @ W_hh^T.
void LstmBackwardRows(int64_t T, int64_t B, int64_t H, int64_t r0, int64_t r1, const float* packed_t,
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
    if (t > 0) ProductTransposed(rows, H, 4, dgates + (t * B + r0) * G, packed_t, dh_next, false);
  }
}

// ---------------------------------------------------------------- GRU

// One step of R rows for unit group u: r = sigmoid(x_r + b_r + h W_hr),
// z likewise, hn = h W_hn + b_hn, n = tanh(x_n + b_n + r hn),
// h = (1 - z) n + z h_prev. Rows are H (h) and 3H (gx) and 4H (res) apart.
template <int R>
void GruTile(int64_t H, int64_t u, const float* packed, const float* bias, const float* b_hn,
             const float* gx, const float* h_prev, float* h, float* res) {
  const int64_t col = u * kWidth, G = 3 * H;
  const Vec br = Load(bias + col), bz = Load(bias + H + col), bn = Load(bias + 2 * H + col),
            bhn = Load(b_hn + col);
  Vec acc[R][3];
  for (int r = 0; r < R; ++r) {
    acc[r][0] = Load(gx + r * G + col) + br;
    acc[r][1] = Load(gx + r * G + H + col) + bz;
    acc[r][2] = bhn;
  }
  if (h_prev != nullptr) AddProduct<R, 3>(H, u, packed, h_prev, acc);
  for (int r = 0; r < R; ++r) {
    const Vec rr = Sigmoid(acc[r][0]), z = Sigmoid(acc[r][1]), hn = acc[r][2];
    const Vec n = Tanh(Load(gx + r * G + 2 * H + col) + bn + rr * hn);
    const Vec hp = h_prev != nullptr ? Load(h_prev + r * H + col) : Vec{};
    Store(h + r * H + col, (1.0f - z) * n + z * hp);
    float* a = res + r * 4 * H + col;
    Store(a, rr);
    Store(a + H, z);
    Store(a + 2 * H, n);
    Store(a + 3 * H, hn);
  }
}

using GruTileFn = void (*)(int64_t, int64_t, const float*, const float*, const float*, const float*,
                           const float*, float*, float*);
template <int... R>
constexpr std::array<GruTileFn, sizeof...(R)> GruTiles(std::integer_sequence<int, R...>) {
  return {&GruTile<R + 1>...};
}
constexpr auto kGruTiles = GruTiles(std::make_integer_sequence<int, kGruRows>());

void GruForwardRows(int64_t T, int64_t B, int64_t H, int64_t r0, int64_t r1, const float* packed,
                    const float* bias, const float* b_hn, const float* gx, float* hs, float* res) {
  for (int64_t t = 0; t < T; ++t) {
    const int64_t now = t * B, before = (t - 1) * B;
    for (int64_t u = 0; u < H / kWidth; ++u)
      for (int64_t m = r0; m < r1; m += kGruRows) {
        const int r = static_cast<int>(std::min<int64_t>(kGruRows, r1 - m));
        kGruTiles[r - 1](H, u, packed, bias, b_hn, gx + (now + m) * 3 * H,
                         t ? hs + (before + m) * H : nullptr, hs + (now + m) * H, res + (now + m) * 4 * H);
      }
  }
}

// Rows [r0, r1), T steps in reverse: d gx and d (h @ W_hh), then
// dh_{t-1} = dh_t z_t + d(h @ W_hh)_t @ W_hh^T.
void GruBackwardRows(int64_t T, int64_t B, int64_t H, int64_t r0, int64_t r1, const float* packed_t,
                     const float* hs, const float* res, const float* dhs, float* dgx, float* dgh) {
  const int64_t G = 3 * H, rows = r1 - r0;
  thread_local std::vector<float> scratch;
  scratch.assign(rows * H, 0.0f);
  float* dh_next = scratch.data();
  for (int64_t t = T - 1; t >= 0; --t) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = t * B + r0 + r;
      const float *a = res + row * 4 * H, *dy = dhs + row * H;
      const float* h_prev = t ? hs + (row - B) * H : nullptr;
      float *dx = dgx + row * G, *dhh = dgh + row * G, *next = dh_next + r * H;
      for (int64_t j = 0; j < H; j += kWidth) {
        const Vec rr = Load(a + j), z = Load(a + H + j), n = Load(a + 2 * H + j), hn = Load(a + 3 * H + j);
        const Vec dh = Load(dy + j) + Load(next + j);
        const Vec dn = dh * (1.0f - z) * (1.0f - n * n);
        const Vec dr = dn * hn * rr * (1.0f - rr);
        const Vec hp = h_prev != nullptr ? Load(h_prev + j) : Vec{};
        const Vec dz = dh * (hp - n) * z * (1.0f - z);
        Store(dx + j, dr);
        Store(dx + H + j, dz);
        Store(dx + 2 * H + j, dn);
        Store(dhh + j, dr);
        Store(dhh + H + j, dz);
        Store(dhh + 2 * H + j, dn * rr);
        Store(next + j, dh * z);  // the direct path; the product below adds the rest
      }
    }
    if (t > 0) ProductTransposed(rows, H, 3, dgh + (t * B + r0) * G, packed_t, dh_next, true);
  }
}

// ---------------------------------------------------------------- FFI

// rows(r0, r1) on one contiguous share of the batch per thread.
template <typename F>
void OverRows(ffi::ThreadPool& pool, int64_t B, const F& rows) {
  const int64_t shares = std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), B));
  const int64_t per = (B + shares - 1) / shares;
  ParallelFor(pool, shares, [&](int64_t s) {
    const int64_t r0 = s * per, r1 = std::min(B, r0 + per);
    if (r0 < r1) rows(r0, r1);
  });
}

ffi::Error CheckShapes(int64_t H, int64_t width, int G) {
  if (H % kWidth != 0 || width != G * H)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "recurrent kernel: H must be a multiple of the vector width, and gates G x H wide");
  return ffi::Error::Success();
}

using F32 = ffi::Buffer<ffi::F32>;
using OutF32 = ffi::ResultBuffer<ffi::F32>;

ffi::Error LstmForward(ffi::ThreadPool pool, F32 gx, F32 b, F32 w_hh, OutF32 hs, OutF32 cs, OutF32 acts) {
  auto dims = gx.dimensions();
  const int64_t T = dims[0], B = dims[1], H = w_hh.dimensions()[0];
  if (ffi::Error e = CheckShapes(H, dims[2], 4); e.failure()) return e;
  const std::vector<float> packed = PackByUnits(w_hh.typed_data(), H, 4);
  OverRows(pool, B, [&](int64_t r0, int64_t r1) {
    LstmForwardRows(T, B, H, r0, r1, packed.data(), b.typed_data(), gx.typed_data(), hs->typed_data(),
                    cs->typed_data(), acts->typed_data());
  });
  return ffi::Error::Success();
}

ffi::Error LstmBackward(ffi::ThreadPool pool, F32 cs, F32 acts, F32 w_hh, F32 dhs, OutF32 dgates) {
  auto dims = acts.dimensions();
  const int64_t T = dims[0], B = dims[1], H = w_hh.dimensions()[0];
  if (ffi::Error e = CheckShapes(H, dims[2], 4); e.failure()) return e;
  const std::vector<float> packed = PackTransposed(w_hh.typed_data(), H, 4);
  OverRows(pool, B, [&](int64_t r0, int64_t r1) {
    LstmBackwardRows(T, B, H, r0, r1, packed.data(), cs.typed_data(), acts.typed_data(),
                     dhs.typed_data(), dgates->typed_data());
  });
  return ffi::Error::Success();
}

ffi::Error GruForward(ffi::ThreadPool pool, F32 gx, F32 b, F32 w_hh, F32 b_hn, OutF32 hs, OutF32 res) {
  auto dims = gx.dimensions();
  const int64_t T = dims[0], B = dims[1], H = w_hh.dimensions()[0];
  if (ffi::Error e = CheckShapes(H, dims[2], 3); e.failure()) return e;
  const std::vector<float> packed = PackByUnits(w_hh.typed_data(), H, 3);
  OverRows(pool, B, [&](int64_t r0, int64_t r1) {
    GruForwardRows(T, B, H, r0, r1, packed.data(), b.typed_data(), b_hn.typed_data(), gx.typed_data(),
                   hs->typed_data(), res->typed_data());
  });
  return ffi::Error::Success();
}

ffi::Error GruBackward(ffi::ThreadPool pool, F32 hs, F32 res, F32 w_hh, F32 dhs, OutF32 dgx, OutF32 dgh) {
  auto dims = hs.dimensions();
  const int64_t T = dims[0], B = dims[1], H = w_hh.dimensions()[0];
  if (ffi::Error e = CheckShapes(H, w_hh.dimensions()[1], 3); e.failure()) return e;
  const std::vector<float> packed = PackTransposed(w_hh.typed_data(), H, 3);
  OverRows(pool, B, [&](int64_t r0, int64_t r1) {
    GruBackwardRows(T, B, H, r0, r1, packed.data(), hs.typed_data(), res.typed_data(), dhs.typed_data(),
                    dgx->typed_data(), dgh->typed_data());
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnagenLstmForward, LstmForward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>()    // gx
                                  .Arg<F32>()    // b
                                  .Arg<F32>()    // w_hh
                                  .Ret<F32>()    // hs
                                  .Ret<F32>()    // cs
                                  .Ret<F32>());  // acts

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnagenLstmBackward, LstmBackward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>()    // cs
                                  .Arg<F32>()    // acts
                                  .Arg<F32>()    // w_hh
                                  .Arg<F32>()    // dhs
                                  .Ret<F32>());  // dgates

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnagenGruForward, GruForward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>()    // gx
                                  .Arg<F32>()    // b
                                  .Arg<F32>()    // w_hh
                                  .Arg<F32>()    // b_hn
                                  .Ret<F32>()    // hs
                                  .Ret<F32>());  // res

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnagenGruBackward, GruBackward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>()    // hs
                                  .Arg<F32>()    // res
                                  .Arg<F32>()    // w_hh
                                  .Arg<F32>()    // dhs
                                  .Ret<F32>()    // d gx
                                  .Ret<F32>());  // d (h @ W_hh)
