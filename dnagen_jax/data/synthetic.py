"""A gene-like synthetic source with an exact likelihood: the oracle.

A random order-k Markov chain over A, C, G, T. Each context of the k previous
nucleotides (positions before the start read as BOS) has its own next-base
distribution, drawn from a Dirichlet(alpha). Gene lengths follow a log-normal
clipped to [min_length, max_length], like real short human genes.

Because the chain is known, `log_likelihood` gives the exact log-probability of
any sequence under the true source, and `oracle_perplexity` the best perplexity
any model can reach on a split. Every model is judged against it.
"""

from __future__ import annotations

import numpy as np

_START = 4  # context symbol for "before the start" (BOS padding)


class MarkovSource:
  """A seeded random order-k Markov chain.

  Attributes:
    probs: [5] * order + [4] next-base probabilities; context symbols are
      0..3 for A, C, G, T and 4 for "before the start".
  """

  def __init__(self, order: int = 3, alpha: float = 0.5, seed: int = 0,
               min_length: int = 200, max_length: int = 1000,
               mean_length: float = 550.0):
    if order < 0:
      raise ValueError("order must be >= 0")
    self.order, self.seed = order, seed
    self.min_length, self.max_length = min_length, max_length
    self.mean_length = mean_length
    rng = np.random.default_rng([seed, 1])
    self.probs = rng.dirichlet(np.full(4, alpha), size=5 ** order).reshape(
        [5] * order + [4])
    self._flat = self.probs.reshape(-1, 4)
    self._weights = 5 ** np.arange(order - 1, -1, -1)  # context -> flat index

  def _context_index(self, ctx: np.ndarray) -> np.ndarray:
    """ctx: [n, order] of symbols 0..4 -> [n] flat context index."""
    return ctx @ self._weights if self.order else np.zeros(len(ctx), np.int64)

  def sample(self, num: int, seed: int) -> list[str]:
    """Draws `num` genes; the same (source, seed) always gives the same genes."""
    rng = np.random.default_rng([self.seed, 2, seed])
    lengths = np.exp(rng.normal(np.log(self.mean_length), 0.45, size=num))
    lengths = np.clip(lengths.astype(np.int64), self.min_length, self.max_length)
    max_len = int(lengths.max())
    out = np.zeros((num, max_len), np.int64)
    ctx = np.full((num, self.order), _START, np.int64)
    cdf = np.cumsum(self._flat, axis=1)
    for t in range(max_len):
      u = rng.random(num)
      c = cdf[self._context_index(ctx)]
      sym = np.minimum((u[:, None] > c).sum(axis=1), 3)
      out[:, t] = sym
      if self.order:
        ctx = np.concatenate([ctx[:, 1:], sym[:, None]], axis=1)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    return [letters[row[:n]].tobytes().decode() for row, n in zip(out, lengths)]

  def token_log_probs(self, seq: str) -> np.ndarray:
    """[len(seq)] exact ln p(x_t | x_<t) of each nucleotide (A, C, G, T)."""
    sym = np.frombuffer(seq.encode(), dtype=np.uint8)
    sym = np.searchsorted(np.frombuffer(b"ACGT", dtype=np.uint8), sym)
    padded = np.concatenate([np.full(self.order, _START), sym])
    idx = np.lib.stride_tricks.sliding_window_view(padded, self.order + 1)[:, :-1]
    return np.log(self._flat[self._context_index(idx), sym])

  def log_likelihood(self, seq: str) -> float:
    """Exact natural-log probability of `seq` under the source."""
    return float(self.token_log_probs(seq).sum())

  def oracle_perplexity(self, seqs) -> float:
    """exp(-total log-likelihood / total nucleotides) over `seqs`."""
    total = sum(self.log_likelihood(s) for s in seqs)
    return float(np.exp(-total / sum(len(s) for s in seqs)))
