"""The N-gram model behind the project's one scoring interface (`scoring.Scorer`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dnagen_jax import scoring
from dnagen_jax.ngram.model import NGramModel

WINDOW = 1 << 20  # nucleotides per window when scoring long records (scoring/strided.py)
INFINIGRAM_CONTEXT = 1 << 16  # context kept per window by the uncapped infinigram


class NGramScorer(scoring.Scorer):
  """Scores genes with an `NGramModel` (or an `InfiniGram`), all genes in one vectorised pass.

  `token_log_probs(seqs)` gives ln p(x_t | BOS^(n-1) x_<t) for every nucleotide
  (n float64 arrays [L_i]); a gene holding N raises a one-line UserError when
  the model has no N outcome.
  """

  def __init__(self, model: NGramModel, batch_nucleotides: int = 1 << 24):
    self.model = model
    self.name = model.name
    self.kmer = int(getattr(model, "kmer", 1))  # nucleotides per token
    self.batch_nucleotides = batch_nucleotides  # bounds the temporary arrays of one pass

  def eval_defaults(self):
    """Windows of 2^20 nucleotides. An order-n model keeps n - 1 tokens of context: long records
    then score exactly as whole. The uncapped infinigram keeps 2^16 (matches longer are cut there)."""
    kmer = int(getattr(self.model, "kmer", 1) or 1)
    cap = getattr(self.model, "cap", None)
    if cap is None:  # NGramModel
      context = (self.model.order - 1) * kmer
      return WINDOW, lambda w: min(context, w - kmer), 0
    if cap:
      return WINDOW, lambda w: min(cap - 1, w - 1), 0
    return WINDOW, lambda w: min(INFINIGRAM_CONTEXT, w // 2), 0

  def token_log_probs(self, seqs: Sequence[str]) -> list[np.ndarray]:
    seqs = list(seqs)
    out, start, total = [], 0, 0
    for i, s in enumerate(seqs):
      total += len(s)
      if total >= self.batch_nucleotides or i == len(seqs) - 1:
        out.extend(self.model.log_probs(seqs[start:i + 1]))
        start, total = i + 1, 0
    return out


def load_infinigram(workdir: str) -> NGramScorer:
  """The infinigram saved in `workdir` by `ngram.infinigram_train`, as a Scorer."""
  from dnagen_jax.ngram.infinigram import InfiniGram  # pylint: disable=g-import-not-at-top
  return NGramScorer(InfiniGram.load(workdir))


def load(workdir: str) -> NGramScorer:
  """The N-gram model saved in `workdir` by `ngram.train`, as a Scorer."""
  return NGramScorer(NGramModel.load(workdir))
