"""A mixture of any trained models, as one `scoring.Scorer`.

Its probability of nucleotide x_t is a weighted sum of its K components':

  p(x_t | BOS x_<t) = sum_k w[b(t), k] p_k(x_t | BOS x_<t),   sum_k w[b, k] = 1, w >= 0

where b(t) is a bucket of a feature of the history alone (so p(. | history)
still sums to 1 over the outcomes): none (one bucket), or the length of the
longest context of x_t that occurs in the training genes (`longest_match`,
read from an infinigram component), cut at `edges`. The weights maximise
the validation likelihood, by EM: with responsibilities
r[t, k] = w[b(t), k] p_k(x_t) / p(x_t), each bucket's new weights are the
mean of r over its positions (the likelihood never decreases; iterations stop
when it gains less than 1e-9 nats per nucleotide, or after 1000).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dnagen_jax import scoring
from dnagen_jax.errors import UserError

FEATURES = ("", "longest_match")
EM_TOL = 1e-9  # nats per nucleotide
EM_MAX_ITERS = 1000


def parse_edges(edges) -> np.ndarray:
  """Bucket edges '8,12,16' -> int64 [B-1] increasing (bucket b: edges[b-1] <= f < edges[b])."""
  if isinstance(edges, str):
    try:
      edges = [int(x) for x in edges.split(",") if x.strip()]
    except ValueError:
      raise UserError(f"mixture_buckets={edges!r} must be increasing integers like '8,12,16'") from None
  edges = np.asarray(list(edges), np.int64)
  if edges.size and np.any(np.diff(edges) <= 0):
    raise UserError(f"mixture_buckets={edges.tolist()} must be strictly increasing")
  return edges


def fit_weights(log_probs: np.ndarray, buckets: np.ndarray, num_buckets: int):
  """EM weights of a mixture.

  Args:
    log_probs: float64 [P, K] ln p_k(x_t) of each component at each position.
    buckets: int64 [P] bucket of each position.
  Returns:
    weights float64 [B, K] (rows of empty buckets: uniform), iterations run.
  """
  num_pos, k = log_probs.shape
  shift = log_probs.max(1, keepdims=True)  # scaled probabilities: no underflow
  shift = np.where(np.isfinite(shift), shift, 0.0)
  q = np.exp(log_probs - shift)  # [P, K]
  w = np.full((num_buckets, k), 1.0 / k)
  counts = np.bincount(buckets, minlength=num_buckets).astype(np.float64)
  prev = -np.inf
  it = 0
  for it in range(1, EM_MAX_ITERS + 1):
    mix = (q * w[buckets]).sum(1)  # [P]
    ll = float(np.log(mix).sum() + shift.sum()) / max(num_pos, 1)
    r = q * w[buckets] / mix[:, None]
    new = np.zeros_like(w)
    for j in range(k):  # K is small: one bincount per component
      new[:, j] = np.bincount(buckets, weights=r[:, j], minlength=num_buckets)
    w = np.where(counts[:, None] > 0, new / np.maximum(counts, 1)[:, None], 1.0 / k)
    if ll - prev < EM_TOL:
      break
    prev = ll
  return w, it


class MixtureScorer(scoring.Scorer):
  """Scores genes with the mixture of `components` (Scorers) under `weights` [B, K]."""

  def __init__(self, components: list, weights, edges, feature: str = "",
               feature_model=None, labels=None):
    self.components = components
    self.weights = np.asarray(weights, np.float64)
    self.edges = parse_edges(edges)
    self.feature = feature
    self.kmer = int(getattr(components[0], "kmer", 1)) if components else 1  # one tokenization (checked)
    self.feature_model = feature_model  # an InfiniGram (longest_match), or None
    self.labels = labels or [getattr(c, "name", "component") for c in components]
    self.name = "mixture(" + "+".join(self.labels) + ")"
    if self.weights.shape != (self.edges.size + 1 if feature else 1, len(components)):
      raise UserError(f"mixture weights of shape {self.weights.shape} do not fit "
                      f"{len(components)} components and {self.edges.size + 1} buckets")

  def eval_defaults(self):
    """The smallest window of the components, with the largest context that any asks for within it."""
    parts = [c.eval_defaults() for c in self.components]
    window = min(p[0] for p in parts)
    limits = [p[2] for p in parts if p[2]]
    return window, lambda w: max(p[1](w) for p in parts), min(limits) if limits else 0

  def buckets(self, seqs: Sequence[str]) -> np.ndarray:
    """int64 [P] bucket of each nucleotide of the concatenated genes."""
    total = sum(len(s) for s in seqs)
    if not self.feature:
      return np.zeros(total, np.int64)
    longest = np.concatenate(self.feature_model.longest_match(seqs) or [np.zeros(0, np.int64)])
    return np.searchsorted(self.edges, longest, side="right")

  def component_log_probs(self, seqs: Sequence[str]) -> np.ndarray:
    """float64 [P, K] ln p_k(x_t) of every component."""
    cols = []
    for c in self.components:
      lps = c.token_log_probs(list(seqs))
      cols.append(np.concatenate(lps) if lps else np.zeros(0))
    return np.stack(cols, 1)

  def token_log_probs(self, seqs: Sequence[str]) -> list[np.ndarray]:
    seqs = list(seqs)
    if not seqs:
      return []
    lp = self.component_log_probs(seqs)
    w = self.weights[self.buckets(seqs)]
    with np.errstate(divide="ignore"):
      mixed = np.log((np.exp(lp) * w).sum(1))
    return np.split(mixed, np.cumsum([len(s) for s in seqs])[:-1])
