"""Scaling laws in model size and compute: L(N, D) fits (approach 3) and IsoFLOP minima (approach 2).

Approach 3 (Hoffmann et al. 2022; Besiroglu et al. 2024's replication):
  L(N, D) = E + A (N/N0)^-alpha + B (D/D0)^-beta   (bits per nucleotide)
N: parameters without the embedding tables; D: training nucleotides; N0, D0
the geometric means of the points' N and D (so that A and B are of the order
of the losses). Fitted by minimising the Huber loss (delta `HUBER_DELTA`) of
  ln L_i - LSE(a - alpha ln(N_i/N0), b - beta ln(D_i/D0), e)
(E = e^e, A = e^a, B = e^b) with L-BFGS from the 6 best starts of a grid
(`_GRID`, 243 points), keeping the lowest. Intervals: `bootstrap` replicates resample the
points (every seed is a point) with replacement, refit from the best fit, and
take the 2.5 and 97.5 percentiles.

Compute-optimal allocation from the fit: a family's training FLOPs per
nucleotide grow with N as c N^gamma (fitted over its ladder; gamma = 1, c = 6
is the textbook 6N), so a budget C buys D = C / (c N^gamma) and
  N_opt(C) = G C^(beta / (alpha + gamma beta)),
  G = (alpha A N0^alpha / (gamma beta B D0^beta c^beta))^(1 / (alpha + gamma beta)),
  D_opt(C) = C / (c N_opt^gamma).

Approach 2: per budget, a parabola in ln N through the IsoFLOP points gives
the loss-minimising N (an edge point where the curve is not convex); then
N_opt(C) = k_N C^a_N and D_opt(C) = k_D C^a_D by least squares in log-log,
with bootstrap intervals (points resampled within each budget).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import optimize

from dnagen_jax.errors import UserError

HUBER_DELTA = 1e-3  # Chinchilla's: residuals above 0.1% in ln L count linearly
PARAMS = ("E", "A", "alpha", "B", "beta")
# Starting points: alpha, beta, ln E as a share of the smallest loss, ln A, ln B (N, D normalised).
_GRID = dict(alpha=(0.2, 0.7, 1.5), beta=(0.2, 0.7, 1.5), e_share=(0.5, 0.9, 0.99),
             a=(-5.0, -2.0, 0.0), b=(-5.0, -2.0, 0.0))
_REFINE = 6


def law(n, d, fit: dict) -> np.ndarray:
  """E + A (N/N0)^-alpha + B (D/D0)^-beta for N, D [...] (float64 [...])."""
  n, d = np.asarray(n, np.float64), np.asarray(d, np.float64)
  return (fit["E"] + fit["A"] * (n / fit["N0"]) ** -fit["alpha"]
          + fit["B"] * (d / fit["D0"]) ** -fit["beta"])


def _objective(p, x_n, x_d, y, delta):
  """Sum of Huber losses of ln L - LSE(...) and its gradient over p = (e, a, alpha, b, beta)."""
  e, a, alpha, b, beta = p
  t_n, t_d = a - alpha * x_n, b - beta * x_d  # [n] each; the third term is e
  top = np.maximum(np.maximum(t_n, t_d), e)
  w_e, w_n, w_d = np.exp(e - top), np.exp(t_n - top), np.exp(t_d - top)
  total = w_e + w_n + w_d
  r = top + np.log(total) - y  # LSE - ln L
  small = np.abs(r) <= delta
  h = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
  dh = np.where(small, r, delta * np.sign(r)) / total  # times the softmax weights below
  g_n, g_d = dh * w_n, dh * w_d
  grad = np.array([np.dot(dh, w_e), g_n.sum(), -np.dot(g_n, x_n), g_d.sum(), -np.dot(g_d, x_d)])
  return float(h.sum()), grad


def _minimise(p0, x_n, x_d, y, delta):
  bounds = [(None, None), (None, None), (0.0, 5.0), (None, None), (0.0, 5.0)]
  return optimize.minimize(_objective, p0, args=(x_n, x_d, y, delta), jac=True,
                           method="L-BFGS-B", bounds=bounds, options={"maxiter": 500})


def fit_law(n, d, loss, n0: float | None = None, d0: float | None = None, start: dict | None = None,
            delta: float = HUBER_DELTA) -> dict:
  """The best L(N, D) over the grid of starts (or from `start`).

  Args:
    n: [m] parameters; d: [m] training nucleotides; loss: [m] bits per nucleotide (all > 0).
  Returns:
    {'E', 'A', 'alpha', 'B', 'beta', 'N0', 'D0', 'objective'}.
  """
  n, d, loss = (np.asarray(v, np.float64) for v in (n, d, loss))
  if n.size < len(PARAMS) + 1:
    raise UserError(f"an L(N, D) fit needs more points than its {len(PARAMS)} parameters "
                    f"(got {n.size} points)")
  n0 = float(np.exp(np.log(n).mean())) if n0 is None else n0
  d0 = float(np.exp(np.log(d).mean())) if d0 is None else d0
  x_n, x_d, y = np.log(n / n0), np.log(d / d0), np.log(loss)
  if start is not None:
    starts = [np.array([math.log(start["E"]), math.log(start["A"]), start["alpha"],
                        math.log(start["B"]), start["beta"]])]
  else:
    lo = float(loss.min())
    grid = [np.array([math.log(s * lo), a, al, b, be]) for al, be, s, a, b in itertools.product(
        _GRID["alpha"], _GRID["beta"], _GRID["e_share"], _GRID["a"], _GRID["b"])]
    # L-BFGS from the `_REFINE` grid points of lowest objective (the grid's 243 cost seconds each)
    values = [_objective(p, x_n, x_d, y, delta)[0] for p in grid]
    starts = [grid[i] for i in np.argsort(values)[:_REFINE]]
  best = None
  for p0 in starts:
    r = _minimise(p0, x_n, x_d, y, delta)
    if best is None or r.fun < best.fun:
      best = r
  e, a, alpha, b, beta = best.x
  return {"E": math.exp(e), "A": math.exp(a), "alpha": float(alpha), "B": math.exp(b),
          "beta": float(beta), "N0": n0, "D0": d0, "objective": float(best.fun)}


def flops_law(n, flops_per_nt) -> tuple[float, float]:
  """(c, gamma) of flops_per_nt = c N^gamma, least squares in log-log over a ladder ([m] each)."""
  ln_n, ln_f = np.log(np.asarray(n, np.float64)), np.log(np.asarray(flops_per_nt, np.float64))
  if np.unique(ln_n).size < 2:
    return float(np.exp(np.mean(ln_f - ln_n))), 1.0
  gamma, ln_c = np.polyfit(ln_n, ln_f, 1)
  return float(np.exp(ln_c)), float(gamma)


def optimal(fit: dict, c_flops: float, cost: tuple[float, float]) -> dict:
  """Compute-optimal N, D and loss of a fitted L(N, D) at a budget of `c_flops` training FLOPs."""
  c, gamma = cost
  alpha, beta = fit["alpha"], fit["beta"]
  if alpha <= 0 or beta <= 0:  # a flat direction: no interior optimum
    return {"N": math.nan, "D": math.nan, "loss": math.nan}
  expo = 1.0 / (alpha + gamma * beta)
  g = (alpha * fit["A"] * fit["N0"] ** alpha / (gamma * beta * fit["B"] * fit["D0"] ** beta
                                                 * c ** beta)) ** expo
  n = g * c_flops ** (beta * expo)
  d = c_flops / (c * n ** gamma)
  return {"N": float(n), "D": float(d), "loss": float(law(n, d, fit))}


def _percentiles(values) -> list[float] | None:
  v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
  return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v.size else None


def fit_with_intervals(n, d, loss, flops_per_nt, budgets=(), bootstrap: int = 200,
                       seed: int = 0) -> dict:
  """The L(N, D) fit, bootstrap intervals, and the compute-optimal N, D, loss at `budgets`.

  Args:
    n, d, loss: [m] per point; flops_per_nt: [m] training FLOPs per nucleotide of each point.
  Returns:
    {'E', 'A', 'alpha', 'B', 'beta', 'N0', 'D0', 'points', 'bootstrap', 'cost': [c, gamma],
     'ci': {param: [lo, hi]}, 'optimal': [{'C', 'N', 'D', 'loss', 'ci': {...}}]}.
  """
  n, d, loss = (np.asarray(v, np.float64) for v in (n, d, loss))
  best = fit_law(n, d, loss)
  cost = flops_law(n, flops_per_nt)
  rng = np.random.default_rng(seed)
  reps = []
  while len(reps) < bootstrap:
    idx = rng.integers(0, n.size, n.size)
    if np.unique(n[idx]).size < 2 or np.unique(d[idx]).size < 2:
      continue  # a replicate must vary both N and D
    reps.append(fit_law(n[idx], d[idx], loss[idx], best["N0"], best["D0"], start=best))
  out = dict(best, points=int(n.size), bootstrap=int(bootstrap), cost=list(cost), ci={}, optimal=[])
  for key in PARAMS:
    out["ci"][key] = _percentiles([r[key] for r in reps])
  for c_flops in budgets:
    opt = optimal(best, float(c_flops), cost)
    rep_opt = [optimal(r, float(c_flops), cost) for r in reps]
    opt["ci"] = {k: _percentiles([o[k] for o in rep_opt]) for k in ("N", "D", "loss")}
    out["optimal"].append(dict(C=float(c_flops), **opt))
  return out


# ------------------------------------------------------------------ approach 2: IsoFLOP minima

def isoflop_minimum(n, loss) -> tuple[float, bool]:
  """(loss-minimising N, interior?) of one IsoFLOP profile: a parabola in ln N ([m] each).

  Interior when the parabola is convex with its vertex inside the profile's N
  range; otherwise the best point's N (an edge: the optimum lies beyond the ladder).
  """
  ln_n, loss = np.log(np.asarray(n, np.float64)), np.asarray(loss, np.float64)
  best = float(np.exp(ln_n[np.argmin(loss)]))
  if np.unique(ln_n).size < 3:
    return best, False
  a, b, _ = np.polyfit(ln_n, loss, 2)
  if a <= 0:
    return best, False
  vertex = -b / (2 * a)
  if not ln_n.min() <= vertex <= ln_n.max():
    return best, False
  return float(np.exp(vertex)), True


def _power_law(c, y) -> tuple[float, float]:
  """(k, a) of y = k C^a by least squares in log-log."""
  a, ln_k = np.polyfit(np.log(c), np.log(y), 1)
  return float(math.exp(ln_k)), float(a)


def isoflop_fit(budget, n, loss, flops_per_nt, budgets=(), bootstrap: int = 200, seed: int = 0) -> dict:
  """Approach 2 over IsoFLOP points: minima per budget, N_opt(C) and D_opt(C) power laws.

  Args:
    budget: [m] each point's nominal budget C; n, loss, flops_per_nt: [m].
  Returns:
    {'minima': [{'C', 'N', 'D', 'loss_min', 'interior'}], 'N_law': [k, a], 'D_law': [k, a],
     'ci': {'a_N', 'a_D'}, 'optimal': [{'C', 'N', 'D', 'ci'}]} (laws None with < 2 budgets).
  """
  budget, n, loss = (np.asarray(v, np.float64) for v in (budget, n, loss))
  cost = flops_law(n, flops_per_nt)
  levels = sorted(set(budget.tolist()))

  def minima(idx_by_level):
    out = []
    for c_flops, idx in zip(levels, idx_by_level):
      n_min, interior = isoflop_minimum(n[idx], loss[idx])
      out.append({"C": c_flops, "N": n_min, "D": c_flops / (cost[0] * n_min ** cost[1]),
                  "loss_min": float(loss[idx].min()), "interior": interior})
    return out

  groups = [np.flatnonzero(budget == c) for c in levels]
  found = minima(groups)
  result = {"minima": found, "cost": list(cost), "N_law": None, "D_law": None, "ci": {}, "optimal": []}
  if len(levels) < 2:
    return result
  cs = np.array(levels)
  result["N_law"] = list(_power_law(cs, [m["N"] for m in found]))
  result["D_law"] = list(_power_law(cs, [m["D"] for m in found]))
  rng = np.random.default_rng(seed)
  reps = []
  for _ in range(bootstrap):
    m = minima([g[rng.integers(0, g.size, g.size)] for g in groups])
    reps.append((_power_law(cs, [x["N"] for x in m]), _power_law(cs, [x["D"] for x in m])))
  result["ci"] = {"a_N": _percentiles([r[0][1] for r in reps]),
                  "a_D": _percentiles([r[1][1] for r in reps])}
  for c_flops in budgets:
    k_n, a_n = result["N_law"]
    k_d, a_d = result["D_law"]
    result["optimal"].append({
        "C": float(c_flops), "N": k_n * c_flops ** a_n, "D": k_d * c_flops ** a_d,
        "ci": {"N": _percentiles([r[0][0] * c_flops ** r[0][1] for r in reps]),
               "D": _percentiles([r[1][0] * c_flops ** r[1][1] for r in reps])}})
  return result
