"""Non-overlapping k-mer tokens (data.kmer = k = 2..6) and their tail rule.

A gene x_1..x_L is cut into floor(L/k) k-mers from its start, plus, when r =
L mod k > 0, a tail of its last r nucleotides. Ids (k >= 2):

  PAD=0  BOS=1  EOS=2                      the specials, as for nucleotides
  3 + v                                    the full k-mer whose base-4 value is v
                                           (A=0 C=1 G=2 T=3, first letter most significant)
  3 + 4^k + (4 + ... + 4^(r-1)) + v        a tail of r < k letters with value v (targets only)

The models' vocabulary is the 3 + 4^k specials and full k-mers. A tail is
never an input (it is the gene's last token); as a target it is scored as the
probability that the next k-mer *starts with* those r letters: the sum over
the 4^(k-r) full k-mers that extend it, which form one contiguous id range
[3 + v 4^(k-r), 3 + (v + 1) 4^(k-r)). So every nucleotide is accounted for,
no probability is spent on where a gene ends (the nucleotide models do not
predict the end either), and the total log-loss over a gene's tokens divided
by its L nucleotides is bits per nucleotide on the same scale as k = 1.
k = 1 is the nucleotide vocabulary of `tokens` (with N); k-mers read only A, C, G, T.
"""

from __future__ import annotations

import math

import numpy as np

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError

SPECIALS = 3  # PAD, BOS, EOS
MAX_K = 6

_LUT = np.full(256, 255, np.uint8)  # byte -> 0..3 for A, C, G, T; 255 otherwise
for _i, _ch in enumerate("ACGT"):
  _LUT[ord(_ch)] = _LUT[ord(_ch.lower())] = _i


def vocab_size(k: int) -> int:
  """The models' vocabulary: tokens.VOCAB_SIZE for nucleotides, 3 + 4^k for k-mers."""
  return tokens.VOCAB_SIZE if k == 1 else SPECIALS + 4 ** k


def kmer_of_vocab(vocab: int) -> int:
  """Inverse of vocab_size (which k a model's output width belongs to)."""
  if vocab == tokens.VOCAB_SIZE:
    return 1
  k = round(math.log(vocab - SPECIALS, 4))
  if SPECIALS + 4 ** k != vocab:
    raise ValueError(f"vocabulary {vocab} is not 3 + 4^k")
  return k


def _tail_offset(k: int, r: int) -> int:
  return SPECIALS + 4 ** k + sum(4 ** j for j in range(1, r))


def num_targets(k: int) -> int:
  """Size of the target id space: specials, full k-mers and the tails."""
  return _tail_offset(k, k)


def num_tokens(lengths, k: int):
  """Tokens of genes of `lengths` nucleotides: ceil(L / k)."""
  return -(-np.asarray(lengths, np.int64) // k)


def encode(seq: str, k: int) -> np.ndarray:
  """int32 [ceil(L/k)] token ids of a gene over A, C, G, T (see the module docstring)."""
  sym = _LUT[np.frombuffer(seq.encode("latin-1", "replace"), np.uint8)]
  if sym.size and sym.max() == 255:
    pos = int(np.flatnonzero(sym == 255)[0])
    raise UserError(f"{k}-mer tokens read A, C, G, T only: {seq[pos]!r} at position {pos + 1} "
                    "(use data.kmer=1 with data.unknown_policy='n', or 'skip' such genes)")
  n_full, r = divmod(sym.size, k)
  weights = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
  out = np.empty(n_full + (r > 0), np.int32)
  out[:n_full] = SPECIALS + sym[:n_full * k].reshape(n_full, k).astype(np.int64) @ weights
  if r:
    out[-1] = _tail_offset(k, r) + int(sym[n_full * k:].astype(np.int64) @ weights[k - r:])
  return out


def decode(ids, k: int) -> str:
  """Inverse of `encode` (specials print as _ ^ $)."""
  out = []
  for t in map(int, ids):
    if t < SPECIALS:
      out.append(tokens.ID_TO_CHAR[t])
      continue
    r = k
    if t >= SPECIALS + 4 ** k:
      r = max(j for j in range(1, k) if t >= _tail_offset(k, j))
      v = t - _tail_offset(k, r)
    else:
      v = t - SPECIALS
    out.append("".join("ACGT"[(v // 4 ** (r - 1 - i)) % 4] for i in range(r)))
  return "".join(out)


def target_ranges(k: int) -> tuple[np.ndarray, np.ndarray]:
  """int32 [num_targets(k)] (lo, hi): target id t is scored as the vocabulary ids [lo, hi).

  Specials and full k-mers: [t, t + 1); a tail: the full k-mers that extend it.
  """
  n = num_targets(k)
  lo = np.arange(n, dtype=np.int64)
  hi = lo + 1
  for r in range(1, k):
    start = _tail_offset(k, r)
    v = np.arange(4 ** r)
    lo[start:start + 4 ** r] = SPECIALS + v * 4 ** (k - r)
    hi[start:start + 4 ** r] = SPECIALS + (v + 1) * 4 ** (k - r)
  return lo.astype(np.int32), hi.astype(np.int32)


def spread(token_log_probs: np.ndarray, length: int, k: int) -> np.ndarray:
  """float64 [length] per-nucleotide array: each token's ln p at its last nucleotide, 0 elsewhere.

  Sums and counts (hence perplexity and bits/nt) are those of the tokens over
  the gene's nucleotides; `scoring.Scorer` expects one entry per nucleotide.
  """
  out = np.zeros(length, np.float64)
  ends = np.minimum(np.arange(1, len(token_log_probs) + 1) * k, length) - 1
  out[ends] = token_log_probs
  return out
