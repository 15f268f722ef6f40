"""Genes as packed integer n-gram codes, and counting them without Python loops.

Symbols keep the project's token ids (`dnagen_jax.data.tokens`): BOS=1, EOS=2,
A=3, C=4, G=5, T=6, N=7 (0 is never used). Each fits in 3 bits, so an n-gram
w_1..w_n packs into one uint64 with the oldest symbol in the high bits:

  code = w_1 << 3(n-1) | w_2 << 3(n-2) | ... | w_n        (n <= 21)

Two properties the rest of the package relies on:
  * the context of an n-gram is `code >> 3`, so in an array sorted by code the
    n-grams of one context are contiguous;
  * its last k symbols are `code & mask(k)`, so every lower order of a window is
    read off the same code.

Counting is `np.bincount` over the whole code space when it is small (8^n
entries, n <= 8 by default) and `np.unique` (a sort) above that; both give the
same sorted (keys, counts).
"""

from __future__ import annotations

import os

import numpy as np

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError

BITS = 3
MAX_ORDER = 64 // BITS   # 21 symbols fit in a uint64 code
DENSE_MAX_CODES = 1 << 24  # count by bincount when the code space is at most this (128 MiB of int64)

# Byte -> symbol: ACGTN (either case, U as T), '^' for BOS and '$' for EOS padding.
_LUT = np.zeros(256, np.uint8)
for _ch, _tok in (("A", tokens.A), ("C", tokens.C), ("G", tokens.G), ("T", tokens.T),
                  ("U", tokens.T), ("N", tokens.N)):
  _LUT[ord(_ch)] = _LUT[ord(_ch.lower())] = _tok
_LUT[ord("^")] = tokens.BOS
_LUT[ord("$")] = tokens.EOS


def mask(k: int) -> np.uint64:
  """Bit mask selecting the last k symbols of a code."""
  return np.uint64((1 << (BITS * k)) - 1)


def check_order(order: int, kmer: int = 1) -> int:
  """`order` if an order-`order` window of `kmer`-nucleotide tokens fits one uint64 code."""
  if kmer > 1 and not 1 <= int(order) * kmer <= MAX_ORDER:
    raise UserError(
        f"ngram_order={order} with data.kmer={kmer} does not fit the N-gram codes: a window of "
        f"{order} {kmer}-mers is {order * kmer} nucleotides, at most {MAX_ORDER} fit one 64-bit "
        f"code ({BITS} bits each); use ngram_order <= {MAX_ORDER // kmer} for {kmer}-mers")
  if not 1 <= int(order) <= MAX_ORDER:
    raise UserError(
        f"ngram_order={order} is out of range: orders 1..{MAX_ORDER} are supported "
        f"(a context is packed into one 64-bit code, {BITS} bits per symbol)")
  return int(order)


def padded_stream(seqs, left: int, right: int) -> tuple[np.ndarray, np.ndarray]:
  """All genes, each padded as BOS*left + gene + EOS*right, end to end.

  Args:
    seqs: n genes (strings over ACGTN).
  Returns:
    stream: uint8 [sum(len) + n * (left + right)] symbols;
    starts: int64 [n] offset of each gene's padded segment in `stream`.
  """
  pad_l, pad_r = "^" * left, "$" * right
  text = pad_l + (pad_r + pad_l).join(seqs) + pad_r
  stream = _LUT[np.frombuffer(text.encode("latin-1", "replace"), np.uint8)]
  lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
  starts = np.concatenate([[0], np.cumsum(lengths + left + right)[:-1]]).astype(np.int64)
  if not stream.all():  # a byte outside ACGTN^$
    bad = int(np.flatnonzero(stream == 0)[0])
    gene = int(np.searchsorted(starts, bad, side="right") - 1)
    pos = bad - int(starts[gene]) - left
    raise UserError(
        f"sequence {gene}: invalid character {text[bad]!r} at position {pos + 1} "
        f"(N-gram models read A, C, G, T and N only)")
  return stream, starts


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
  """Concatenated aranges: [starts[0] .. starts[0]+counts[0]), ... as int64."""
  counts = np.asarray(counts, np.int64)
  total = int(counts.sum())
  offsets = np.repeat(np.asarray(starts, np.int64) - np.cumsum(counts) + counts, counts)
  return offsets + np.arange(total, dtype=np.int64)


def window_codes(stream: np.ndarray, order: int, window_starts: np.ndarray | None) -> np.ndarray:
  """uint64 [W] codes of the order-n windows stream[s : s + order] for s in window_starts (None: all).

  Built by doubling (codes of 2, 4, 8, ... symbols from two shifted halves):
  log2(n) passes over the stream instead of n, in uint32 while 3n <= 32 bits.
  """
  m = stream.size - order + 1
  if m <= 0:
    return np.zeros(0, np.uint64)
  dtype = np.uint32 if BITS * order <= 32 else np.uint64
  code, width = None, 0                 # code[i] packs stream[i : i + width]
  block, bwidth = stream.astype(dtype), 1  # block[i] packs stream[i : i + bwidth]
  remaining = order
  while remaining:
    if remaining & bwidth:
      if code is None:
        code, width = block, bwidth
      else:  # append the block after the current code
        n = min(code.size, block.size - width)
        code = (code[:n] << dtype(BITS * bwidth)) | block[width:width + n]
        width += bwidth
      remaining -= bwidth
    if remaining:
      block = (block[:-bwidth] << dtype(BITS * bwidth)) | block[bwidth:]
      bwidth *= 2
  code = code[:m].astype(np.uint64)
  return code if window_starts is None else code[window_starts]


def segment_window_codes(stream: np.ndarray, order: int, starts: np.ndarray,
                         drop: int) -> np.ndarray:
  """Codes of the order-n windows that start anywhere in each segment but its last `drop` positions.

  Segment g is stream[starts[g] : starts[g+1]] (the last one runs to the end).
  Equivalent to window_codes(stream, order, ranges(starts, seg_len - drop)),
  but selects with a boolean mask built from only G * drop positions.
  """
  m = stream.size - order + 1
  valid = np.ones(max(m, 0), bool)
  ends = np.append(starts[1:], stream.size)
  if drop:
    bad = ranges(ends - drop, np.full(ends.size, drop))
    valid[bad[bad < m]] = False
  return window_codes(stream, order, None)[valid] if m > 0 else np.zeros(0, np.uint64)


def unique_counts(codes: np.ndarray, k: int, weights: np.ndarray | None = None,
                  dense_max: int = DENSE_MAX_CODES,
                  few_runs: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Sorted distinct codes of k symbols, their (weighted) counts and multiplicities.

  Args:
    codes: uint64 [W] codes of k-symbol n-grams.
    weights: optional int64 [W]; counts sum them instead of counting 1 each.
    few_runs: `codes` is a few sorted runs (the suffixes of a sorted table);
      a stable sort (timsort) merges those several times faster than a fresh sort.
  Returns:
    keys: uint64 [U] sorted distinct codes;
    counts: int64 [U] number (or weight sum) of each;
    distinct: int64 [U] how many entries of `codes` had each key.
  """
  space = 1 << (BITS * k)
  if space <= dense_max:
    idx = codes.astype(np.int64)
    distinct = np.bincount(idx, minlength=space)
    keys = np.flatnonzero(distinct)
    counts = (distinct if weights is None else
              np.bincount(idx, weights=weights, minlength=space).astype(np.int64))
    return keys.astype(np.uint64), counts[keys], distinct[keys]
  if weights is None and not few_runs:
    keys, distinct = np.unique(codes, return_counts=True)
    return keys, distinct.astype(np.int64), distinct.astype(np.int64)
  order = np.argsort(codes, kind="stable" if few_runs else "quicksort")
  ordered = codes[order]
  starts = group_starts(ordered)
  distinct = np.diff(np.append(starts, ordered.size)).astype(np.int64)
  counts = distinct if weights is None else group_sums(np.asarray(weights, np.int64)[order], starts)
  return ordered[starts], counts, distinct


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
  """int64 [G] first index of each run of equal values in a sorted array."""
  if sorted_keys.size == 0:
    return np.zeros(0, np.int64)
  return np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))


def lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
  """values[i] where keys[i] == query, else 0. keys sorted uint64 [U]; queries [Q]."""
  if keys.size == 0:
    return np.zeros(queries.shape, values.dtype)
  i = np.searchsorted(keys, queries)
  np.minimum(i, keys.size - 1, out=i)
  return np.where(keys[i] == queries, values[i], 0)


def group_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
  """Exact int64 sums of the runs of `values` that begin at `starts` [G].

  A cumulative sum (exact for integers) is several times faster than
  np.add.reduceat.
  """
  cs = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
  return cs[np.append(starts[1:], values.size)] - cs[starts]


def sorted_positions(keys: np.ndarray, sorted_queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(index, found) of ascending queries in sorted keys; searchsorted is ~8x faster on sorted queries."""
  if keys.size == 0:
    return np.zeros(sorted_queries.shape, np.int64), np.zeros(sorted_queries.shape, bool)
  i = np.searchsorted(keys, sorted_queries)
  np.minimum(i, keys.size - 1, out=i)
  return i, keys[i] == sorted_queries


def available_memory_bytes() -> int:
  """MemAvailable from /proc/meminfo, else total physical memory."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_fit_bytes(num_windows: int, order: int, levels: int) -> int:
  """Peak bytes a fit needs, estimated before anything is allocated.

  Per level: the window codes, a sort's copy and the inverse/count arrays
  (about 4 x 8 bytes per window), or a dense bincount table (8^k int64 twice)
  where that is used; plus the padded stream.
  """
  total = num_windows * (1 + 8 * 2)  # stream bytes and the full uint64 window array
  for k in range(order - levels + 1, order + 1):
    space = 1 << (BITS * k)
    per_level = 32 * num_windows if space > DENSE_MAX_CODES else 16 * space
    total += per_level
  return int(total)


def format_bytes(n: float) -> str:
  for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
    if n < 1024 or unit == "TiB":
      return f"{n:.1f} {unit}"
    n /= 1024
  return f"{n:.1f} TiB"


def check_memory(num_windows: int, order: int, levels: int, smoothing: str,
                 limit_bytes: int | None = None) -> int:
  """Raises a UserError (before allocating) when a fit would not fit in memory."""
  need = estimate_fit_bytes(num_windows, order, levels)
  limit = int(limit_bytes) if limit_bytes else available_memory_bytes()
  if need > limit:
    raise UserError(
        f"an order-{order} {smoothing} N-gram on {num_windows:,} training windows needs about "
        f"{format_bytes(need)} of memory, but only {format_bytes(limit)} is available "
        f"(lower model.ngram_order, train on fewer genes, or raise model.ngram_max_memory_gb)")
  return need
