"""The study's N-gram protocol: NLTK `MLE`, `Laplace` and `Lidstone`, vectorised.

Follows the rules of NLTK's `nltk.lm` models exactly, as docs/ngram.md
("The study's NLTK protocol") lists them (and agrees with NLTK 3.10
to ~1e-15 relative; tests/test_ngram_nltk.py checks against NLTK itself):
  * training at order n: each gene padded to BOS^(n-1) + gene + EOS^(n-1) (no
    padding at n = 1); only the L + n - 1 order-n windows are counted, and
    C(context) counts every window with that context (EOS targets included);
  * V = distinct symbols of the padded training text + 1 (<UNK>):
    5 at n = 1 (A C G T UNK), 7 at n >= 2 (adds BOS, EOS), +1 if N occurs;
  * scored windows: the padded test gene's order-n windows without the last
    n - 2 (those with EOS in the context): L at n = 1, L + 1 at n >= 2;
  * MLE p = c / C(ctx), 0 when C(ctx) = 0 (perplexity inf); Laplace
    p = (c + 1) / (C(ctx) + V); Lidstone (add_k) p = (c + k) / (C(ctx) + k V);
  * perplexity = 2 ** (-mean log2 p) over all scored windows of the test set.
A symbol unseen in training (e.g. N) is <UNK> in NLTK, whose counts are all
zero; looking up its code finds nothing, which gives the same numbers.
"""

from __future__ import annotations

import numpy as np

from dnagen_jax.errors import UserError
from dnagen_jax.ngram import codes as C

SMOOTHINGS = ("mle", "laplace", "add_k")


def _pad(order: int) -> int:
  return order - 1 if order > 1 else 0


def windows(seqs, order: int, train: bool) -> tuple[np.ndarray, np.ndarray]:
  """Order-n window codes of `seqs` under the protocol.

  Returns (codes uint64 [W], padded stream uint8). Per gene: L + n - 1
  training windows, L + 1 scored windows (L at n = 1).
  """
  pad = _pad(order)
  stream, starts = C.padded_stream(list(seqs), pad, pad)
  # A padded segment of S = L + 2 pad symbols holds S - order + 1 windows;
  # scoring also drops the last n - 2 (EOS in the context).
  drop = order - 1 + (0 if train or order <= 2 else order - 2)
  return C.segment_window_codes(stream, order, starts, drop), stream


class NltkNGram:
  """An NLTK-protocol model: order-n counts, context totals and V.

  Small orders (8^n <= codes.DENSE_MAX_CODES, n <= 8) keep dense tables
  indexed by code; larger ones sorted keys (np.unique) and binary search.
  """

  def __init__(self, train_seqs, order: int, smoothing: str = "laplace", k: float = 1.0):
    order = C.check_order(order)
    if smoothing not in SMOOTHINGS:
      raise UserError(f"the NLTK protocol covers {', '.join(SMOOTHINGS)}, not {smoothing!r}")
    self.order, self.smoothing = order, smoothing
    self.k = 1.0 if smoothing == "laplace" else float(k)
    codes, stream = windows(train_seqs, order, train=True)
    self.vocab_size = int(np.count_nonzero(np.bincount(stream, minlength=8))) + 1  # + <UNK>
    self.dense = (1 << (C.BITS * order)) <= C.DENSE_MAX_CODES
    if self.dense:
      idx = codes.astype(np.intp)
      self.table = np.bincount(idx, minlength=1 << (C.BITS * order))
      self.ctx_table = np.bincount(idx >> C.BITS, minlength=1 << (C.BITS * (order - 1)))
      self.num_counts = int(np.count_nonzero(self.table))
    else:
      self.keys, self.counts, _ = C.unique_counts(codes, order)
      ctx = self.keys >> np.uint64(C.BITS)
      starts = C.group_starts(ctx)
      self.ctx_keys, self.ctx_total = ctx[starts], C.group_sums(self.counts, starts)
      self.num_counts = int(self.keys.size)

  def window_log2_probs(self, codes: np.ndarray) -> np.ndarray:
    """log2 p of order-n windows: uint64 [W] -> float64 [W] (-inf for p = 0)."""
    if self.dense:
      idx = codes.astype(np.intp)
      c, tot = self.table[idx].astype(np.float64), self.ctx_table[idx >> C.BITS].astype(np.float64)
    else:
      c = C.lookup(self.keys, self.counts, codes).astype(np.float64)
      tot = C.lookup(self.ctx_keys, self.ctx_total, codes >> np.uint64(C.BITS)).astype(np.float64)
    if self.smoothing == "mle":
      p = np.divide(c, tot, out=np.zeros_like(c), where=tot > 0)
    else:
      p = (c + self.k) / (tot + self.k * self.vocab_size)
    with np.errstate(divide="ignore"):
      return np.log2(p)

  def perplexity(self, test_seqs) -> float:
    """NLTK's `lm.perplexity` over all scored windows of `test_seqs`."""
    codes, _ = windows(test_seqs, self.order, train=False)
    if codes.size == 0:
      raise UserError("no test windows to score")
    return float(2.0 ** (-self.window_log2_probs(codes).mean()))


def perplexity(train_seqs, test_seqs, order: int, smoothing: str = "laplace",
               k: float = 1.0) -> float:
  """Test perplexity of an order-n NLTK-protocol model fit on `train_seqs`."""
  return NltkNGram(train_seqs, order, smoothing, k).perplexity(test_seqs)
