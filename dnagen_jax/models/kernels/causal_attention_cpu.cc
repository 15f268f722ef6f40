// Causal softmax attention for XLA:CPU, called through the XLA FFI.
//
// Why a kernel: XLA:CPU writes each score tile to memory between the q @ k^T
// product, the softmax and p @ v, and its small tile products run at a
// quarter of what the vector units can do. Here each (sequence,
// head) is one task: its scores for a block of queries stay in this
// thread's cache, and every product goes through one register-blocked
// micro-kernel. Compiled on first use by cpu_attention.py with
// -march=native (so the vector width is this machine's).
//
// Layout: q, k, v, o, do, dq, dk, dv are [..., t, d] row-major float32 (q
// already scaled by 1/sqrt(d)); lse is [..., t]. The leading dimensions are
// independent (sequence, head) pairs.
//
// Forward, per query block [s, e):  S = q_i k[:e]^T, p = softmax of each
// row over keys 0 .. query, o_i = p v[:e], lse_i = logsumexp of the row.
// Backward recomputes p from lse (flash attention):
//   dv += p^T do_i, dp = do_i v^T, ds = p * (dp - rowsum(do_i * o_i)),
//   dq_i = ds k, dk += ds^T q_i.

#include <cmath>
#include <utility>
#include <vector>

#include "simd.h"

namespace {

// Micro-tiles of rows x vectors accumulators, a little under the register
// count (32 with AVX-512, 16 without): one for products whose columns run
// over keys, one for products whose columns are head_dim.
constexpr int kMaxRows = 6, kMaxVecs = 6;
constexpr int kKeyRows = 6, kKeyVecs = kWidth == 16 ? 4 : 2;
constexpr int kDimRows = 4, kDimVecs = kWidth == 16 ? 6 : 3;
// K per pass: q @ k^T and do @ v^T sum over head_dim in one pass; the others over 64 keys or queries at a time.
constexpr int64_t kKeyDepth = 1 << 30, kDimDepth = 64;

constexpr auto kTiles = TileTable<kMaxRows, kMaxVecs>();

// Which part of a product over a block of queries (first, first + 1, ...)
// the causal mask leaves to compute; skipped parts are never read.
enum class Causal {
  kColumnsAreKeys,  // C[query row, key]: key panels past a row's query are skipped
  kKeysEnd,         // A[query row, key]: a row's sum stops after its query
  kRowsAreKeys,     // A[key row, query]: a key row's sum starts at the first query that sees it
};

// C[M, N] (+)= A[M, K] B[K, N] in tiles of up to `rows` x `vecs` (smaller on
// the edges), skipping what `causal` says is masked for a query block
// starting at `first`. N is a multiple of kWidth; A[m, k] is at A[m * sm + k * sk].
void Gemm(int rows, int vecs, int64_t depth, Causal causal, int64_t first, int64_t M, int64_t N,
          int64_t K, const float* A, int64_t sm, int64_t sk, const float* B, int64_t ldb,
          float* C, int64_t ldc, bool add) {
  // K in chunks of `depth`, so that the rows of B a chunk reads stay in L1 across the tiles.
  for (int64_t kb = 0; kb < K; kb += depth) {
    const int64_t ke = std::min(K, kb + depth);
    for (int64_t n = 0; n < N; n += vecs * kWidth) {
      const int v = static_cast<int>(std::min<int64_t>(vecs, (N - n) / kWidth));
      int64_t m = 0;
      if (causal == Causal::kColumnsAreKeys) m = std::max<int64_t>(0, n - first) / rows * rows;
      for (; m < M; m += rows) {
        const int r = static_cast<int>(std::min<int64_t>(rows, M - m));
        int64_t k0 = 0, k1 = K;
        if (causal == Causal::kKeysEnd) k1 = std::min(K, first + m + r);
        if (causal == Causal::kRowsAreKeys) k0 = std::max<int64_t>(0, m - first);
        const bool seen = k0 < kb;  // an earlier chunk already wrote this tile
        k0 = std::max(k0, kb);
        k1 = std::min(k1, ke);
        if (k1 <= k0) continue;  // nothing in this chunk (the tile is written by another, or added to)
        kTiles[r - 1][v - 1](k1 - k0, A + m * sm + k0 * sk, sm, sk, B + k0 * ldb + n, ldb,
                             C + m * ldc + n, ldc, add || seen);
      }
    }
  }
}

// Products whose columns are keys (q k^T, do v^T), and the rest, whose columns are head_dim.
template <typename... Args>
void KeyGemm(Args... args) { Gemm(kKeyRows, kKeyVecs, kKeyDepth, args...); }
template <typename... Args>
void DimGemm(Args... args) { Gemm(kDimRows, kDimVecs, kDimDepth, args...); }

// Lane i of a vector starting at column j is visible to query `query` when j + i <= query.
inline Vec Visible(int64_t j, int64_t query, Vec x, Vec hidden) {
  Vec lane;
  for (int i = 0; i < kWidth; ++i) lane[i] = static_cast<float>(i);
  return lane + static_cast<float>(j) <= static_cast<float>(query) ? x : hidden;
}

// Scratch for one (sequence, head): operands repacked so that every product
// reads B rows whose length is a multiple of kWidth (zero padded).
struct Packed {
  int64_t tp, dp;  // t and d rounded up to whole vectors
  int64_t ld;      // row stride of [., tp] buffers: not a multiple of 4 KiB, which would map every row to the same cache set
  Packed(int64_t t, int64_t d) : tp(RoundUp(t, kWidth)), dp(RoundUp(d, kWidth)), ld(tp + kWidth) {}
  // x [t, d] -> [d, ld] (x^T, zero padded columns).
  static void Transpose(const float* x, int64_t t, int64_t d, int64_t ld, float* out) {
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < d; ++j) out[j * ld + i] = x[i * d + j];
    for (int64_t j = 0; j < d; ++j) std::fill(out + j * ld + t, out + (j + 1) * ld, 0.0f);
  }
  // x [t, d] -> [tp, dp] (zero padded).
  static void Pad(const float* x, int64_t t, int64_t d, int64_t tp, int64_t dp, float* out) {
    for (int64_t i = 0; i < t; ++i) {
      std::memcpy(out + i * dp, x + i * d, d * sizeof(float));
      std::fill(out + i * dp + d, out + (i + 1) * dp, 0.0f);
    }
    std::fill(out + t * dp, out + tp * dp, 0.0f);
  }
};

// Max of row s[0 .. query] (scores of the keys the query sees).
inline float RowMax(const float* s, int64_t query) {
  const Vec ninf = Vec{} - INFINITY;
  Vec top = ninf;
  for (int64_t j = 0; j <= query; j += kWidth) {
    const Vec x = Visible(j, query, Load(s + j), ninf);
    top = x > top ? x : top;
  }
  float best = top[0];
  for (int i = 1; i < kWidth; ++i) best = std::max(best, top[i]);
  return best;
}

// Row s of width w (a multiple of kWidth) -> p[j] = exp(s[j] - shift) for
// keys j <= query, 0 after. Returns the row sum.
inline float ExpRow(float* s, int64_t w, int64_t query, float shift) {
  Vec sum{};
  int64_t j = 0;
  for (; j <= query; j += kWidth) {
    const Vec e = Visible(j, query, Exp(Load(s + j) - shift), Vec{});
    Store(s + j, e);
    sum += e;
  }
  for (; j < w; j += kWidth) Store(s + j, Vec{});
  float total = 0.0f;
  for (int i = 0; i < kWidth; ++i) total += sum[i];
  return total;
}

// This thread's scratch, handed out in pieces and kept for the thread's life
// (the largest call's size: about 3.6 KB per token of t at d = 85): fresh
// allocations of this size cost page faults on every (sequence, head).
class Scratch {
 public:
  explicit Scratch(size_t total) {
    thread_local std::vector<float> buffer;
    if (buffer.size() < total) buffer.resize(total);
    next_ = buffer.data();
  }
  float* Take(size_t n) { float* p = next_; next_ += n; return p; }
 private:
  float* next_;
};

void ForwardOne(const float* q, const float* k, const float* v, float* o, float* lse, int64_t t,
                int64_t d, int64_t block) {
  Packed p(t, d);
  const int64_t ld = p.ld;
  Scratch scratch(d * ld + p.tp * p.dp + block * ld + block * p.dp);
  float *kt = scratch.Take(d * ld), *vp = scratch.Take(p.tp * p.dp);
  float *s = scratch.Take(block * ld), *out = scratch.Take(block * p.dp);
  Packed::Transpose(k, t, d, ld, kt);
  Packed::Pad(v, t, d, p.tp, p.dp, vp);
  for (int64_t start = 0; start < t; start += block) {
    const int64_t rows = std::min(block, t - start), width = std::min(RoundUp(start + rows, kWidth), p.tp);
    KeyGemm(Causal::kColumnsAreKeys, start, rows, width, d, q + start * d, d, 1, kt, ld, s, ld, false);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = s + r * ld;
      const int64_t query = start + r;
      const float top = RowMax(row, query);
      const float total = ExpRow(row, width, query, top);
      const float inv = 1.0f / total;
      for (int64_t j = 0; j < width; j += kWidth) Store(row + j, Load(row + j) * inv);
      lse[query] = top + std::log(total);
    }
    DimGemm(Causal::kKeysEnd, start, rows, p.dp, width, s, ld, 1, vp, p.dp, out, p.dp, false);
    for (int64_t r = 0; r < rows; ++r) std::memcpy(o + (start + r) * d, out + r * p.dp, d * sizeof(float));
  }
}

void BackwardOne(const float* q, const float* k, const float* v, const float* o, const float* lse,
                 const float* dout, float* dq, float* dk, float* dv, int64_t t, int64_t d, int64_t block) {
  Packed p(t, d);
  const int64_t tp = p.tp, dp = p.dp, ld = p.ld;
  Scratch scratch(2 * d * ld + 5 * tp * dp + 2 * block * ld + block * dp + t);
  float *kt = scratch.Take(d * ld), *vt = scratch.Take(d * ld);
  float *kp = scratch.Take(tp * dp), *qp = scratch.Take(tp * dp), *dop = scratch.Take(tp * dp);
  float *dkp = scratch.Take(tp * dp), *dvp = scratch.Take(tp * dp);
  float *s = scratch.Take(block * ld), *ds = scratch.Take(block * ld), *dqs = scratch.Take(block * dp);
  float* delta = scratch.Take(t);
  std::fill(dkp, dkp + tp * dp, 0.0f);
  std::fill(dvp, dvp + tp * dp, 0.0f);
  Packed::Transpose(k, t, d, ld, kt);
  Packed::Transpose(v, t, d, ld, vt);
  Packed::Pad(k, t, d, tp, dp, kp);
  Packed::Pad(q, t, d, tp, dp, qp);
  Packed::Pad(dout, t, d, tp, dp, dop);
  for (int64_t i = 0; i < t; ++i) {
    float acc = 0.0f;
    for (int64_t j = 0; j < d; ++j) acc += dout[i * d + j] * o[i * d + j];
    delta[i] = acc;
  }
  for (int64_t start = 0; start < t; start += block) {
    const int64_t rows = std::min(block, t - start), width = std::min(RoundUp(start + rows, kWidth), tp);
    KeyGemm(Causal::kColumnsAreKeys, start, rows, width, d, q + start * d, d, 1, kt, ld, s, ld, false);
    for (int64_t r = 0; r < rows; ++r) ExpRow(s + r * ld, width, start + r, lse[start + r]);
    // dv[:width] += p^T do_i: A is p read transposed.
    DimGemm(Causal::kRowsAreKeys, start, width, dp, rows, s, 1, ld, dop + start * dp, dp, dvp, dp, true);
    KeyGemm(Causal::kColumnsAreKeys, start, rows, width, d, dout + start * d, d, 1, vt, ld, ds, ld, false);
    for (int64_t r = 0; r < rows; ++r) {
      const float* pr = s + r * ld;
      float* dsr = ds + r * ld;
      const float dl = delta[start + r];
      const int64_t seen = RoundUp(start + r + 1, kWidth);  // dp past the query's vector was not computed
      for (int64_t j = 0; j < seen; ++j) dsr[j] = pr[j] * (dsr[j] - dl);
      std::fill(dsr + seen, dsr + width, 0.0f);
    }
    DimGemm(Causal::kKeysEnd, start, rows, dp, width, ds, ld, 1, kp, dp, dqs, dp, false);
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dq + (start + r) * d, dqs + r * dp, d * sizeof(float));
    DimGemm(Causal::kRowsAreKeys, start, width, dp, rows, ds, 1, ld, qp + start * dp, dp, dkp, dp, true);
  }
  for (int64_t i = 0; i < t; ++i) {
    std::memcpy(dk + i * d, dkp + i * dp, d * sizeof(float));
    std::memcpy(dv + i * d, dvp + i * dp, d * sizeof(float));
  }
}

// [..., t, d] -> (pairs = product of the leading dims, t, d).
void Shape(const ffi::Buffer<ffi::F32>& x, int64_t* pairs, int64_t* t, int64_t* d) {
  auto dims = x.dimensions();
  *pairs = 1;
  for (size_t i = 0; i + 2 < dims.size(); ++i) *pairs *= dims[i];
  *t = dims[dims.size() - 2];
  *d = dims[dims.size() - 1];
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
                   ffi::Buffer<ffi::F32> v, ffi::ResultBuffer<ffi::F32> o,
                   ffi::ResultBuffer<ffi::F32> lse, int64_t block) {
  int64_t pairs, t, d;
  Shape(q, &pairs, &t, &d);
  if (block <= 0 || block > t) block = t;
  ParallelFor(pool, pairs, [&](int64_t i) {
    ForwardOne(q.typed_data() + i * t * d, k.typed_data() + i * t * d, v.typed_data() + i * t * d,
               o->typed_data() + i * t * d, lse->typed_data() + i * t, t, d, block);
  });
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
                    ffi::Buffer<ffi::F32> v, ffi::Buffer<ffi::F32> o, ffi::Buffer<ffi::F32> lse,
                    ffi::Buffer<ffi::F32> dout, ffi::ResultBuffer<ffi::F32> dq,
                    ffi::ResultBuffer<ffi::F32> dk, ffi::ResultBuffer<ffi::F32> dv, int64_t block) {
  int64_t pairs, t, d;
  Shape(q, &pairs, &t, &d);
  if (block <= 0 || block > t) block = t;
  ParallelFor(pool, pairs, [&](int64_t i) {
    const int64_t x = i * t * d;
    BackwardOne(q.typed_data() + x, k.typed_data() + x, v.typed_data() + x, o.typed_data() + x,
                lse.typed_data() + i * t, dout.typed_data() + x, dq->typed_data() + x,
                dk->typed_data() + x, dv->typed_data() + x, t, d, block);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnagenCausalAttentionForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // q
                                  .Arg<ffi::Buffer<ffi::F32>>()  // k
                                  .Arg<ffi::Buffer<ffi::F32>>()  // v
                                  .Ret<ffi::Buffer<ffi::F32>>()  // o
                                  .Ret<ffi::Buffer<ffi::F32>>()  // lse
                                  .Attr<int64_t>("block"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnagenCausalAttentionBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // q
                                  .Arg<ffi::Buffer<ffi::F32>>()  // k
                                  .Arg<ffi::Buffer<ffi::F32>>()  // v
                                  .Arg<ffi::Buffer<ffi::F32>>()  // o
                                  .Arg<ffi::Buffer<ffi::F32>>()  // lse
                                  .Arg<ffi::Buffer<ffi::F32>>()  // do
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dq
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dk
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dv
                                  .Attr<int64_t>("block"));
