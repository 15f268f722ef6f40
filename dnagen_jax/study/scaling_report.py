"""The scaling part of a study's report (model-size ladders, IsoFLOP budgets): fits, tables, figure.

Written (by report.write_all) only for studies with a ladder or budgets, so
data-size studies made before print the same tables as before. From the rows
of study.csv (report.point_row):
  scaling_fits.json  per neural family and tokenization: L(N, D) (approach 3)
                     and, with budgets, the IsoFLOP minima and N_opt(C), D_opt(C)
                     (approach 2), with the compute-optimal N, D at the
                     config's `optimal_budgets` (and its `budgets`);
  scaling.png        IsoFLOP curves, L(N, D) contours against the points, the
                     fitted frontier (loss against training FLOPs) and loss
                     against wall time (N-grams included);
  study.md           the tables below the data-size ones.
N = parameters without the embedding tables; D = training nucleotides seen
(IsoFLOP studies) or the nested subset's nucleotides (ladders x data sizes).
"""

from __future__ import annotations

import math

import numpy as np

from dnagen_jax.errors import UserError
from dnagen_jax.study import fit_nd


def is_scaling(study) -> bool:
  return bool(study.get("budgets", ())) or any(f.get("sizes", {}) for f in study.families.values())


def d_axis(study) -> str:
  """The study.csv column that is D in L(N, D)."""
  return "nucleotides_seen" if study.get("budgets", ()) else "train_nucleotides"


def _neural(rows, family, k):
  return [r for r in rows if r["family"] == family and r["kmer"] == k and r["flops_per_nt"]
          and r["test_bits_per_nt"] is not None and math.isfinite(r["test_bits_per_nt"])]


def scaling_fits(study, rows: list[dict]) -> dict:
  """L(N, D) and IsoFLOP fits per neural (family, kmer); a fit that cannot be made says why."""
  budgets = tuple(float(c) for c in study.get("budgets", ()))
  wanted = tuple(float(c) for c in study.get("optimal_budgets", ())) + budgets
  boot, seed = int(study.get("bootstrap", 200)), int(study.get("fit_seed", 0))
  axis = d_axis(study)
  out = {"d_axis": axis, "budgets": list(budgets), "optimal_budgets": list(wanted), "families": []}
  for family in study.families:
    for k in sorted({r["kmer"] for r in rows if r["family"] == family}):
      sel = _neural(rows, family, k)
      if not sel:
        continue  # N-grams: no parameters or FLOPs on these axes
      n = [r["params_nonembed"] for r in sel]
      d = [r[axis] for r in sel]
      loss = [r["test_bits_per_nt"] for r in sel]
      fpn = [r["flops_per_nt"] for r in sel]
      entry = {"family": family, "kmer": k, "points": len(sel),
               "oracle_test_bits_per_nt": sel[0]["oracle_test_bits_per_nt"]}
      try:
        if len(set(n)) < 2 or len(set(d)) < 2:
          raise UserError(f"an L(N, D) fit needs at least two sizes and two D's (got {len(set(n))} "
                          f"and {len(set(d))})")
        entry["lnd"] = fit_nd.fit_with_intervals(n, d, loss, fpn, budgets=wanted, bootstrap=boot,
                                                 seed=seed)
      except UserError as e:
        entry["lnd_error"] = str(e)
      if budgets:
        entry["isoflop"] = fit_nd.isoflop_fit([r["budget_flops"] for r in sel], n, loss, fpn,
                                              budgets=wanted, bootstrap=boot, seed=seed)
      out["families"].append(entry)
  return out


def _e(x, digits: int = 3) -> str:
  if x is None or (isinstance(x, float) and not math.isfinite(x)):
    return "-"
  return f"{x:.{digits}g}"


def _ci(ci, digits: int = 3) -> str:
  return f"[{_e(ci[0], digits)}, {_e(ci[1], digits)}]" if ci else "-"


def markdown(study, rows: list[dict], scaling: dict) -> str:
  """The scaling tables: sizes and compute, L(N, D), IsoFLOP minima, compute-optimal N and D, best per budget."""
  axis = "seen" if scaling["d_axis"] == "nucleotides_seen" else "subset"
  lines = ["", "## Sizes and compute", "",
           "N: parameters (without the embedding tables); FLOPs: training FLOPs (models/flops.py; "
           f"docs/studies.md \"Compute\"); D: training nucleotides ({axis}).", "",
           "| point | N | N w/o emb | FLOPs/nt | train FLOPs | D | wall s | test bits/nt |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['point']} | {r['params']:,} | {_e(r['params_nonembed'], 6)} | "
                 f"{_e(r['flops_per_nt'])} | {_e(r['train_flops'])} | {_e(r[scaling['d_axis']])} | "
                 f"{r['wall_s']:.0f} | {r['test_bits_per_nt']:.4f} |")
  lines += ["", "## L(N, D) = E + A (N/N0)^-alpha + B (D/D0)^-beta (Huber in log space; 95% bootstrap)", "",
            "| family | k | points | E | E 95% CI | alpha | alpha CI | beta | beta CI | A | B | N0 | D0 "
            "| oracle | E vs oracle | CI holds oracle |", "|---" * 16 + "|"]
  for f in scaling["families"]:
    if "lnd" not in f:
      lines.append(f"| {f['family']} | {f['kmer']} | {f['points']} | {f.get('lnd_error')} |" + " |" * 12)
      continue
    g, oracle = f["lnd"], f["oracle_test_bits_per_nt"]
    vs = f"{100 * (g['E'] / oracle - 1):+.2f}%" if oracle else "-"
    holds = ("yes" if g["ci"]["E"] and g["ci"]["E"][0] <= oracle <= g["ci"]["E"][1] else "no") if oracle else "-"
    lines.append(f"| {f['family']} | {f['kmer']} | {g['points']} | {g['E']:.4f} | {_ci(g['ci']['E'], 5)} | "
                 f"{g['alpha']:.3f} | {_ci(g['ci']['alpha'])} | {g['beta']:.3f} | {_ci(g['ci']['beta'])} | "
                 f"{g['A']:.3g} | {g['B']:.3g} | {g['N0']:.3g} | {g['D0']:.3g} | "
                 f"{_e(oracle, 5)} | {vs} | {holds} |")
  iso = [f for f in scaling["families"] if "isoflop" in f]
  if iso:
    lines += ["", "## IsoFLOP minima (approach 2: a parabola in ln N per budget)", "",
              "| family | k | C (FLOPs) | N at the minimum | D there | best loss | where |",
              "|---|---|---|---|---|---|---|"]
    for f in iso:
      for m in f["isoflop"]["minima"]:
        lines.append(f"| {f['family']} | {f['kmer']} | {m['C']:.3g} | {m['N']:.3g} | {m['D']:.3g} | "
                     f"{m['loss_min']:.4f} | {'interior' if m['interior'] else 'edge: the ladder ends'} |")
    lines += ["", "| family | k | N_opt ~ C^a: a | a 95% CI | D_opt ~ C^b: b | b 95% CI |", "|---|---|---|---|---|---|"]
    for f in iso:
      r = f["isoflop"]
      if r["N_law"]:
        lines.append(f"| {f['family']} | {f['kmer']} | {r['N_law'][1]:.3f} | {_ci(r['ci']['a_N'])} | "
                     f"{r['D_law'][1]:.3f} | {_ci(r['ci']['a_D'])} |")
  if scaling["optimal_budgets"]:
    lines += ["", "## Compute-optimal size and data (95% bootstrap intervals)", "",
              "| family | k | C (FLOPs) | N (L(N,D)) | D (L(N,D)) | loss there | N (IsoFLOP) | D (IsoFLOP) |",
              "|---|---|---|---|---|---|---|---|"]
    for f in scaling["families"]:
      approach2 = {o["C"]: o for o in f.get("isoflop", {}).get("optimal", [])}
      for i, c in enumerate(scaling["optimal_budgets"]):
        cells = ["-"] * 3
        if "lnd" in f:
          o = f["lnd"]["optimal"][i]
          cells = [f"{_e(o[x])} {_ci(o['ci'][x])}" for x in ("N", "D")] + [
              f"{_e(o['loss'], 4)} {_ci(o['ci']['loss'], 4)}"]
        o2 = approach2.get(c)
        cells += [f"{_e(o2[x])} {_ci(o2['ci'][x])}" for x in ("N", "D")] if o2 else ["-", "-"]
        lines.append(f"| {f['family']} | {f['kmer']} | {c:.3g} | " + " | ".join(cells) + " |")
  if scaling["budgets"]:
    lines += ["", "## Best test loss of each family at each budget (its best size)", "",
              "| family | k | " + " | ".join(f"C = {c:.3g}" for c in scaling["budgets"]) + " | wall s (all sizes) |",
              "|---|---|" + "---|" * (len(scaling["budgets"]) + 1)]
    for family in study.families:
      for k in sorted({r["kmer"] for r in rows if r["family"] == family}):
        sel = [r for r in rows if r["family"] == family and r["kmer"] == k]
        wall = sum(r["wall_s"] for r in sel)
        if sel and not sel[0]["flops_per_nt"]:  # N-grams: no training FLOPs; their best order
          best = min(sel, key=lambda r: r["val_bits_per_nt"])
          lines.append(f"| {family} (best on validation: {best['size_name'] or best['order']}; no "
                       f"training FLOPs) | {k} | " + " | ".join(f"{best['test_bits_per_nt']:.4f}"
                                                             for _ in scaling["budgets"]) + f" | {wall:.0f} |")
          continue
        cells = []
        for c in scaling["budgets"]:
          at = [r for r in sel if r["budget_flops"] == c]
          best = min(at, key=lambda r: r["test_bits_per_nt"]) if at else None
          cells.append(f"{best['test_bits_per_nt']:.4f} ({best['size_name']})" if best else "-")
        lines.append(f"| {family} | {k} | " + " | ".join(cells) + f" | {wall:.0f} |")
  return "\n".join(lines) + "\n"


def plot(study, rows: list[dict], scaling: dict, path: str) -> None:
  """scaling.png: per neural family an IsoFLOP panel and an L(N, D) contour panel; then the
  fitted frontier (loss against training FLOPs) and loss against wall time."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  groups = scaling["families"]
  fig, axes = plt.subplots(len(groups) + 1, 2, figsize=(10, 3.4 * (len(groups) + 1)), squeeze=False)
  colours = {f: plt.cm.tab10(i % 10) for i, f in enumerate(study.families)}
  oracle = next((r["oracle_test_bits_per_nt"] for r in rows if r["oracle_test_bits_per_nt"]), None)
  axis = scaling["d_axis"]
  for row, f in zip(axes, groups):
    sel = _neural(rows, f["family"], f["kmer"])
    ax = row[0]
    title = f"{f['family']}" + (f" {f['kmer']}-mers" if f["kmer"] > 1 else "")
    if "isoflop" in f:  # loss against N, one curve per budget, minima marked
      cmap = plt.cm.viridis
      levels = sorted({r["budget_flops"] for r in sel})
      for i, c in enumerate(levels):
        at = sorted((r for r in sel if r["budget_flops"] == c), key=lambda r: r["params_nonembed"])
        colour = cmap(i / max(1, len(levels) - 1))
        ax.plot([r["params_nonembed"] for r in at], [r["test_bits_per_nt"] for r in at], "o-",
                color=colour, ms=4, label=f"C={c:.2g}")
        m = next(x for x in f["isoflop"]["minima"] if x["C"] == c)
        ax.plot([m["N"]], [min(r["test_bits_per_nt"] for r in at)], "*", color=colour, ms=12,
                mec="k", mew=0.5)
      ax.set_title(f"{title}: IsoFLOP profiles (stars: minima)", fontsize=9)
    else:  # a ladder without budgets: loss against N, one curve per D
      for d in sorted({r[axis] for r in sel}):
        at = sorted((r for r in sel if r[axis] == d), key=lambda r: r["params_nonembed"])
        ax.plot([r["params_nonembed"] for r in at], [r["test_bits_per_nt"] for r in at], "o-", ms=4,
                label=f"D={d:.2g}")
      ax.set_title(f"{title}: loss against size", fontsize=9)
    if oracle:
      ax.axhline(oracle, color="k", ls="--", lw=0.8, label="oracle")
    ax.set_xscale("log")
    ax.set_xlabel("N (parameters without embeddings)")
    ax.set_ylabel("test bits / nt")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    ax = row[1]  # L(N, D) contours against the points (same colour scale)
    n = np.array([r["params_nonembed"] for r in sel], float)
    d = np.array([r[axis] for r in sel], float)
    loss = np.array([r["test_bits_per_nt"] for r in sel])
    lo, hi = loss.min(), loss.max()
    if "lnd" in f:
      gn, gd = np.meshgrid(np.geomspace(n.min() / 2, n.max() * 2, 60), np.geomspace(d.min() / 2, d.max() * 2, 60))
      cs = ax.contour(gn, gd, fit_nd.law(gn, gd, f["lnd"]), levels=np.linspace(lo, hi, 8), cmap="viridis",
                      vmin=lo, vmax=hi, linewidths=0.9)
      ax.clabel(cs, fontsize=6, fmt="%.3f")
      ax.set_title(f"{title}: L(N, D) fit, E = {f['lnd']['E']:.4f}", fontsize=9)
    else:
      ax.set_title(f"{title}: no L(N, D) fit ({f.get('lnd_error', '')[:40]})", fontsize=8)
    ax.scatter(n, d, c=loss, cmap="viridis", vmin=lo, vmax=hi, edgecolors="k", s=30, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (parameters without embeddings)")
    ax.set_ylabel("D (training nucleotides)")
  ax = axes[-1][0]  # the frontier: points and the fitted compute-optimal loss against FLOPs
  for f in groups:
    sel = _neural(rows, f["family"], f["kmer"])
    colour = colours[f["family"]]
    label = f["family"] + (f" k={f['kmer']}" if f["kmer"] > 1 else "")
    ax.scatter([r["train_flops"] for r in sel], [r["test_bits_per_nt"] for r in sel], color=colour,
               s=14, alpha=0.6)
    if "lnd" in f:
      flops = [r["train_flops"] for r in sel] + list(scaling["optimal_budgets"])
      grid = np.geomspace(min(flops) / 2, max(flops), 50)
      frontier = [fit_nd.optimal(f["lnd"], c, tuple(f["lnd"]["cost"]))["loss"] for c in grid]
      ax.plot(grid, frontier, "-", color=colour, label=f"{label} (L(N,D) frontier)")
    else:
      ax.plot([], [], "o", color=colour, label=label)
  if oracle:
    ax.axhline(oracle, color="k", ls="--", lw=0.8, label="oracle")
  ax.set_xscale("log")
  ax.set_xlabel("training FLOPs")
  ax.set_ylabel("test bits / nt")
  ax.set_title("compute frontier: points and fitted optimal loss", fontsize=9)
  ax.legend(fontsize=7)
  ax.grid(True, which="both", alpha=0.3)
  ax = axes[-1][1]  # what this machine paid: loss against wall time, every family
  for family in study.families:
    sel = [r for r in rows if r["family"] == family]
    if sel:
      ax.scatter([r["wall_s"] for r in sel], [r["test_bits_per_nt"] for r in sel], color=colours[family],
                 s=14, label=family)
  if oracle:
    ax.axhline(oracle, color="k", ls="--", lw=0.8)
  ax.set_xscale("log")
  ax.set_xlabel("wall time of the point (s, this machine)")
  ax.set_title("loss against wall time (N-grams included)", fontsize=9)
  ax.legend(fontsize=7)
  ax.grid(True, which="both", alpha=0.3)
  fig.suptitle(f"study {study.name}: scaling in model size and compute", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)
