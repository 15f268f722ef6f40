"""One scoring interface for every model: per-nucleotide log-likelihoods.

Protocol (the project's own, for neural models and N-grams alike): a gene
x_1..x_L is scored as sum_t ln p(x_t | BOS, x_1..x_{t-1}); every nucleotide
counts, nothing else does (no EOS). From that:
  perplexity          = exp(-sum ln p / number of nucleotides)
  bits per nucleotide = -sum log2 p / number of nucleotides = log2(perplexity)

Every scorer (LSTM, GRU, transformer, N-gram, the synthetic oracle) implements
`token_log_probs`; `score` and `perplexity` derive from it. Mutation
detection and variant scoring build on these.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np



class Scorer:
  """Base class: subclasses implement `token_log_probs`."""

  name: str = "scorer"

  def token_log_probs(self, seqs: Sequence[str]) -> list[np.ndarray]:
    """Per-nucleotide natural-log probabilities.

    Args:
      seqs: n normalized genes (A, C, G, T, N).
    Returns:
      n float64 arrays; array i has shape [len(seqs[i])].
    """
    raise NotImplementedError

  def eval_defaults(self) -> tuple[int, Callable[[int], int], int]:
    """How long records are cut for scoring (scoring/strided.py).

    Returns (default window W, context C(W) that a window of W keeps when no
    stride is given, longest window the model takes or 0 for any length).
    """
    return 1 << 20, lambda w: w // 2, 0

  def score(self, seqs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(total log-likelihood [n] float64, nucleotide count [n] int64)."""
    lps = self.token_log_probs(seqs)
    return (np.array([lp.sum() for lp in lps], np.float64),
            np.array([lp.size for lp in lps], np.int64))

  def perplexity(self, seqs: Sequence[str]) -> dict:
    """Corpus perplexity and bits per nucleotide over `seqs`."""
    ll, n = self.score(seqs)
    return perplexity_from_totals(float(ll.sum()), int(n.sum()))


def safe_exp(x: float) -> float:
  """exp that returns inf (or nan) instead of raising OverflowError."""
  return math.exp(x) if x < 709.0 else (x if math.isnan(x) else math.inf)


def perplexity_from_totals(total_log_likelihood: float, count: int) -> dict:
  nll = -total_log_likelihood / max(count, 1)
  return {"perplexity": safe_exp(nll), "bits_per_nucleotide": nll / math.log(2),
          "nucleotides": count}


class OracleScorer(Scorer):
  """The true synthetic source (`synthetic.MarkovSource`): the best possible."""

  name = "oracle"

  def __init__(self, source):
    self.source = source

  def token_log_probs(self, seqs):
    return [self.source.token_log_probs(s) for s in seqs]
