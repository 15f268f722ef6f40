"""Learning-curve fits L(D) = E + B * D^(-beta) in bits per nucleotide, with bootstrap intervals.

D is the number of training nucleotides. The fit minimises a robust loss
(scipy's soft_l1, f_scale = `F_SCALE`) of the residuals in log space,
ln L_i - ln(E + B (D_i / D0)^(-beta)), over (ln E, ln B, ln beta), so E, B and
beta stay positive; D0 is the geometric mean of the D_i (keeps B of order
one). Several starting betas are tried and the lowest cost kept. Confidence
intervals: `bootstrap` replicates resample the points (every seed of every
size is one point) with replacement and refit; the interval is the 2.5 and
97.5 percentiles. Replicates with fewer than three distinct D are redrawn.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

F_SCALE = 0.01  # residuals above ~1% (in ln L) count linearly, not quadratically
_START_BETAS = (0.3, 0.7, 1.5)


def law(d, e: float, b: float, beta: float, d0: float) -> np.ndarray:
  """E + B (D/D0)^(-beta) for D [n] (float64 [n])."""
  return e + b * (np.asarray(d, np.float64) / d0) ** (-beta)


def fit_law(d, loss, d0: float | None = None, start: dict | None = None) -> dict:
  """Least-squares fit of one learning curve.

  Args:
    d: [n] training nucleotides (> 0); loss: [n] bits per nucleotide (> 0).
    start: a previous fit to start from (bootstrap replicates), else several starting betas.
  Returns:
    {'E', 'B', 'beta', 'D0', 'cost'} (B at D = D0).
  """
  d, loss = np.asarray(d, np.float64), np.asarray(loss, np.float64)
  d0 = float(np.exp(np.log(d).mean())) if d0 is None else d0
  x = np.log(d / d0)
  y = np.log(loss)

  def residuals(p):
    e, b, beta = np.exp(p)
    with np.errstate(over="ignore"):  # trial steps may overshoot; least_squares backs off
      return y - np.log(e + b * np.exp(-beta * x))

  best = None
  lo = float(loss.min())
  e0 = 0.9 * lo
  b0 = max(float(np.median(loss)) - e0, 1e-3 * lo)
  starts = ([np.log([start["E"], start["B"], start["beta"]])] if start else
            [np.log([e0, b0, beta0]) for beta0 in _START_BETAS])
  for p0 in starts:
    r = optimize.least_squares(residuals, p0, loss="soft_l1", f_scale=F_SCALE, method="trf",
                               x_scale=1.0, max_nfev=500)
    if best is None or r.cost < best.cost:
      best = r
  e, b, beta = np.exp(best.x)
  return {"E": float(e), "B": float(b), "beta": float(beta), "D0": d0, "cost": float(best.cost)}


def data_needed(fit: dict, target: float) -> float:
  """Training nucleotides at which the fitted curve reaches `target` bits/nt (inf below E)."""
  if target <= fit["E"]:
    return math.inf
  log_d = math.log(fit["D0"]) - math.log((target - fit["E"]) / fit["B"]) / fit["beta"]
  return math.exp(log_d) if log_d < 700 else math.inf  # a tiny beta: beyond any data set


def fit_with_intervals(d, loss, bootstrap: int = 200, seed: int = 0,
                       targets=()) -> dict:
  """The fit, bootstrap percentile intervals of E, B, beta, and the data needed per target loss.

  Returns:
    {'E', 'B', 'beta', 'D0', 'points', 'ci': {name: [lo, hi]}, 'bootstrap',
     'data_needed': [{'loss', 'D', 'ci'}]}.
  """
  d, loss = np.asarray(d, np.float64), np.asarray(loss, np.float64)
  if np.unique(d).size < 3:
    raise ValueError("a learning-curve fit needs at least three sizes")
  best = fit_law(d, loss)
  rng = np.random.default_rng(seed)
  reps = []
  while len(reps) < bootstrap:
    idx = rng.integers(0, d.size, d.size)
    if np.unique(d[idx]).size < 3:
      continue
    reps.append(fit_law(d[idx], loss[idx], best["D0"], start=best))
  out = dict(best, points=int(d.size), bootstrap=int(bootstrap), ci={}, data_needed=[])
  for key in ("E", "B", "beta"):
    vals = np.array([r[key] for r in reps])
    out["ci"][key] = [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))] if reps else None
  for target in targets:
    need = [data_needed(r, target) for r in reps]
    out["data_needed"].append({
        "loss": float(target), "D": data_needed(best, target),
        # nearest rank: replicates whose E lies above the target need infinite data
        "ci": [float(np.percentile(need, q, method="nearest")) for q in (2.5, 97.5)] if reps else None})
  return out
