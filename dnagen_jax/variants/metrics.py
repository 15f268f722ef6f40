"""AUROC, AUPRC and Spearman's rho with case weights, and their bootstrap intervals.

Every metric takes optional integer weights w [n] (how often each case is
counted): a bootstrap resample is the same cases with multinomial counts, so
each resample costs one pass over groups of tied values sorted once, not a new
sort. With w = 1 they are the usual definitions:
  AUROC   P(x_pos > x_neg) + P(x_pos = x_neg) / 2 (Mann-Whitney);
  AUPRC   average precision, sum over thresholds t (descending) of
          (recall(t) - recall(t_prev)) * precision(t), ties at one threshold;
  Spearman  Pearson's r of the mid-ranks.
`x` is the predictor (higher = more likely positive), `y` in {0, 1}.
"""

from __future__ import annotations

import numpy as np


class Tied:
  """Values grouped by ties, sorted ascending: inverse [n] -> group index, ngroups."""

  def __init__(self, x: np.ndarray):
    _, self.inverse = np.unique(np.asarray(x, np.float64), return_inverse=True)
    self.ngroups = int(self.inverse.max()) + 1 if self.inverse.size else 0

  def sums(self, values: np.ndarray) -> np.ndarray:
    """[ngroups] sum of `values` [n] per group, ascending."""
    return np.bincount(self.inverse, weights=values, minlength=self.ngroups)

  def midranks(self, w: np.ndarray) -> np.ndarray:
    """[n] mid-rank of each case among cases counted w times (1-based)."""
    counts = self.sums(w)
    below = np.cumsum(counts) - counts
    return (below + (counts + 1) / 2)[self.inverse]


def _weights(n: int, w) -> np.ndarray:
  return np.ones(n) if w is None else np.asarray(w, np.float64)


def auroc(x, y, w=None, tied: Tied | None = None) -> float:
  y = np.asarray(y, np.float64)
  w = _weights(y.size, w)
  tied = tied or Tied(x)
  pos, neg = tied.sums(w * y), tied.sums(w * (1 - y))
  total_pos, total_neg = pos.sum(), neg.sum()
  if total_pos == 0 or total_neg == 0:
    return float("nan")
  neg_below = np.cumsum(neg) - neg
  return float((pos * (neg_below + neg / 2)).sum() / (total_pos * total_neg))


def auprc(x, y, w=None, tied: Tied | None = None) -> float:
  y = np.asarray(y, np.float64)
  w = _weights(y.size, w)
  tied = tied or Tied(x)
  pos, neg = tied.sums(w * y)[::-1], tied.sums(w * (1 - y))[::-1]  # descending thresholds
  if pos.sum() == 0:
    return float("nan")
  tp, fp = np.cumsum(pos), np.cumsum(neg)
  precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
  return float((pos / pos.sum() * precision).sum())


def spearman(x, z, w=None, tied_x: Tied | None = None, tied_z: Tied | None = None) -> float:
  w = _weights(len(x), w)
  rx, rz = (tied_x or Tied(x)).midranks(w), (tied_z or Tied(z)).midranks(w)
  total = w.sum()
  dx, dz = rx - (w * rx).sum() / total, rz - (w * rz).sum() / total
  den = np.sqrt((w * dx * dx).sum() * (w * dz * dz).sum())
  return float((w * dx * dz).sum() / den) if den > 0 else float("nan")


def roc_curve(x, y) -> tuple[np.ndarray, np.ndarray]:
  """(false positive rate, true positive rate) [ngroups + 1] over descending thresholds."""
  y = np.asarray(y, np.float64)
  tied = Tied(x)
  pos, neg = tied.sums(y)[::-1], tied.sums(1 - y)[::-1]
  tpr = np.concatenate([[0.0], np.cumsum(pos) / max(pos.sum(), 1)])
  fpr = np.concatenate([[0.0], np.cumsum(neg) / max(neg.sum(), 1)])
  return fpr, tpr


def summarize(score, labels=None, numeric=None, resamples: int = 1000, seed: int = 0) -> dict:
  """Metrics of a model's variant scores, with 95% bootstrap intervals.

  Args:
    score: [n] ln p(alt) - ln p(ref); lower = the model finds ALT less likely.
    labels: [n] 1 = damaging, 0 = benign, or None.
    numeric: [n] a measured score, lower = more damaging (e.g. a function
      score), or None.
  Returns:
    {'n', and for labels 'damaging', 'benign', 'auroc', 'auprc' (damaging is
    the positive class, ranked by -score), for numeric 'spearman'; each metric
    as [value, low, high]}.
  """
  score = np.asarray(score, np.float64)
  out: dict = {"n": int(score.size)}
  metrics = {}
  if labels is not None:
    y = np.asarray(labels, np.float64)
    tied = Tied(-score)
    out["damaging"], out["benign"] = int(y.sum()), int((1 - y).sum())
    metrics["auroc"] = lambda w: auroc(-score, y, w, tied)
    metrics["auprc"] = lambda w: auprc(-score, y, w, tied)
  if numeric is not None:
    tx, tz = Tied(score), Tied(numeric)
    metrics["spearman"] = lambda w: spearman(score, numeric, w, tx, tz)
  rng = np.random.default_rng(seed)
  draws = {k: [] for k in metrics}
  for _ in range(resamples if score.size > 1 else 0):
    w = rng.multinomial(score.size, np.full(score.size, 1 / score.size)).astype(np.float64)
    for k, f in metrics.items():
      draws[k].append(f(w))
  for k, f in metrics.items():
    d = np.asarray(draws[k])
    d = d[np.isfinite(d)]
    low, high = (np.percentile(d, [2.5, 97.5]) if d.size else (np.nan, np.nan))
    out[k] = [f(None), float(low), float(high)]
  return out
