"""The study's N-gram protocol: NLTK `MLE`, `Laplace` and `Lidstone`, vectorised.

Follows /work/shared/docs/ngram-protocol.md exactly (and agrees with NLTK 3.10
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


def windows(seqs, order: int, train: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Order-n window codes of `seqs` under the protocol.

  Returns (codes uint64 [W], windows per gene int64 [n_genes], padded stream uint8).
  """
  seqs = list(seqs)
  lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
  pad = _pad(order)
  stream, starts = C.padded_stream(seqs, pad, pad)
  if order == 1:
    per_gene = lengths
  elif train:
    per_gene = lengths + order - 1
  else:
    per_gene = lengths + 1  # drop the last n - 2 windows (EOS in the context)
  return C.window_codes(stream, order, C.ranges(starts, per_gene)), per_gene, stream


class NltkNGram:
  """An NLTK-protocol model: order-n counts, context totals and V."""

  def __init__(self, train_seqs, order: int, smoothing: str = "laplace", k: float = 1.0):
    order = C.check_order(order)
    if smoothing not in SMOOTHINGS:
      raise UserError(f"the NLTK protocol covers {', '.join(SMOOTHINGS)}, not {smoothing!r}")
    self.order, self.smoothing = order, smoothing
    self.k = 1.0 if smoothing == "laplace" else float(k)
    codes, _, stream = windows(train_seqs, order, train=True)
    self.vocab_size = int(np.count_nonzero(np.bincount(stream, minlength=8))) + 1  # + <UNK>
    self.keys, self.counts, _ = C.unique_counts(codes, order)
    ctx = self.keys >> np.uint64(C.BITS)
    starts = C.group_starts(ctx)
    self.ctx_keys, self.ctx_total = ctx[starts], C.group_sums(self.counts, starts)

  def window_log2_probs(self, codes: np.ndarray) -> np.ndarray:
    """log2 p of order-n windows: uint64 [W] -> float64 [W] (-inf for p = 0)."""
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
    codes, _, _ = windows(test_seqs, self.order, train=False)
    if codes.size == 0:
      raise UserError("no test windows to score")
    return float(2.0 ** (-self.window_log2_probs(codes).mean()))


def perplexity(train_seqs, test_seqs, order: int, smoothing: str = "laplace",
               k: float = 1.0) -> float:
  """Test perplexity of an order-n NLTK-protocol model fit on `train_seqs`."""
  return NltkNGram(train_seqs, order, smoothing, k).perplexity(test_seqs)
