"""Decision rules: which gene of a pair does the model take for the real one?

Each rule gives every sequence a score from its per-nucleotide log-probs
ln p(x_t | BOS, x_<t); a pair is correct only if the real gene scores strictly
higher than the mutated one (a tie is wrong, as in the study).

  perplexity   the study's first rule: lower perplexity, i.e. higher mean
               log-probability per nucleotide.
  probability  the study's second rule: lower total negative log-likelihood.
  window       ours: log-odds against the uniform background, summed only over
               the nucleotides the edits changed or whose `window` preceding
               nucleotides they changed (`edits.changed_positions`):
                 score = sum over changed t of (ln p(x_t | x_<t) + ln 4).
               Positions before the first edit have identical log-probs in
               both genes and cancel; positions far downstream carry no
               evidence for a model of finite memory, only noise (e.g. from
               shifted position embeddings), so they are left out. The ln 4
               per nucleotide makes genes of different length comparable: it
               is the likelihood ratio of the study's own mutation channel,
               where an insertion draws its base uniformly (probability 1/4)
               and a deletion draws none. Without it, the rule would prefer
               every deletion (fewer terms, each negative), which is the bias
               of the probability rule.

Ablations, reported alongside: `window_raw` (the window without ln 4) and
`logodds` (ln 4 per nucleotide over whole genes, no window).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from dnagen_jax.mutations import edits as edits_lib

RULES = ("perplexity", "probability", "window")
ABLATIONS = ("window_raw", "logodds")
LN4 = math.log(4.0)
DEFAULT_WINDOW = 20  # >= 2x the 8-gram context, short against genes; docs/mutations.md


def whole_scores(lps: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
  """Scores over whole genes: {rule: [n] float64} for perplexity, probability, logodds."""
  total = np.array([lp.sum() for lp in lps], np.float64)
  count = np.array([lp.size for lp in lps], np.float64)
  return {"perplexity": total / np.maximum(count, 1), "probability": total,
          "logodds": total + LN4 * count}


def window_scores(lp_real: Sequence[np.ndarray], lp_mut: Sequence[np.ndarray],
                  origins: Sequence[np.ndarray], window: int,
                  background: float = LN4) -> tuple[np.ndarray, np.ndarray]:
  """Windowed scores of the real and mutated genes, ([n], [n]) float64.

  Args:
    lp_real, lp_mut: n arrays of per-nucleotide ln p, shapes [Lr_i] and [Lm_i].
    origins: n alignments, [Lm_i] int (see `edits.changed_positions`).
    window: W, nucleotides downstream an edit is taken to affect.
    background: added per counted nucleotide (ln 4; 0 for `window_raw`).
  """
  real, mut = np.zeros(len(lp_real)), np.zeros(len(lp_real))
  for i, (lr, lm, o) in enumerate(zip(lp_real, lp_mut, origins)):
    cr, cm = edits_lib.changed_positions(o, lr.size, window)
    real[i] = (lr[cr] + background).sum()
    mut[i] = (lm[cm] + background).sum()
  return real, mut


def judge(real_score: np.ndarray, mut_score: np.ndarray,
          identical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(correct [n] bool, tie [n] bool): correct iff strictly better for the real gene.

  A pair whose mutated gene equals the real one (edits that undid each other)
  is a tie whatever float noise the model adds.
  """
  tie = (real_score == mut_score) | identical
  return (real_score > mut_score) & ~tie, tie
