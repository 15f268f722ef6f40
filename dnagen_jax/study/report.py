"""A finished study's outputs: study.csv/json (one row per point), fits.json, study.png, study.md.

Everything here is computed from the points' workdirs alone (results.json,
study_point.json, config.json), so rewriting it trains nothing and gives the
same tables. Losses are in bits per nucleotide: a k-mer model's summed
log-loss over all its tokens divided by the gene's nucleotides.
"""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np

from dnagen_jax.study import fit as fit_lib
from dnagen_jax.study import scaling_report

COLUMNS = ("point", "family", "kmer", "size", "seed", "model", "order", "train_nucleotides",
           "train_genes", "params", "steps", "nucleotides_seen", "train_flops", "wall_s",
           "val_bits_per_nt", "test_bits_per_nt", "oracle_test_bits_per_nt",
           "size_name", "budget_flops", "params_nonembed", "flops_per_nt")


def _read(path: str) -> dict:
  with open(path) as f:
    return json.load(f)


def point_row(point, workdir: str) -> dict:
  """One study.csv row from a finished point's workdir."""
  pdir = os.path.join(workdir, "points", point.name)
  r = _read(os.path.join(pdir, "results.json"))
  sp = _read(os.path.join(pdir, "study_point.json"))
  cfg = _read(os.path.join(pdir, "config.json"))
  neural = cfg["model"]["name"] != "ngram"
  oracle = r.get("oracle_test_perplexity")
  tokens_seen = r["nucleotides_seen"] / point.kmer if neural else None
  return {
      "point": point.name, "family": point.family, "kmer": point.kmer, "size": point.size,
      "seed": point.seed, "model": r["model"],
      "order": cfg["model"]["ngram_order"] if not neural else None,
      "train_nucleotides": sp["train_nucleotides"], "train_genes": sp["train_genes"],
      "params": r["params"], "steps": r.get("steps"), "nucleotides_seen": r["nucleotides_seen"],
      # models.flops: training FLOPs per nucleotide (over the whole train split) x nucleotides seen
      "train_flops": point.flops_per_nt * r["nucleotides_seen"] if neural and point.flops_per_nt else (
          6.0 * r["params"] * tokens_seen if neural else None),
      "wall_s": sp["wall_s"], "val_bits_per_nt": r["val_bits_per_nucleotide"],
      "test_bits_per_nt": r["test_bits_per_nucleotide"],
      "oracle_test_bits_per_nt": math.log2(oracle) if oracle else None,
      "size_name": point.size_name, "budget_flops": point.budget_flops or None,
      "params_nonembed": point.params[1] if neural and point.params[1] else None,
      "flops_per_nt": point.flops_per_nt if neural else None,
  }


def fits(study, rows: list[dict]) -> list[dict]:
  """One fit per (family, kmer) of test bits/nt against training nucleotides."""
  out = []
  if study.get("budgets", ()):  # IsoFLOP points share one D (the whole split): no L(D)
    return out
  groups = [(family, k, label) for family in study.families
            for k in sorted({r["kmer"] for r in rows if r["family"] == family})
            for label in sorted({r["size_name"] for r in rows if r["family"] == family},
                                key=lambda x, f=family: _size_order(rows, f, x))]
  for family, k, label in groups:
    sel = [r for r in rows if r["family"] == family and r["kmer"] == k and r["size_name"] == label]
    if not sel:
      continue
    d = [r["train_nucleotides"] for r in sel]
    loss = [r["test_bits_per_nt"] for r in sel]
    entry = {"family": family, "kmer": k, "oracle_test_bits_per_nt": sel[0]["oracle_test_bits_per_nt"]}
    if label:  # a ladder: one L(D) per size
      entry["size_name"] = label
    if len(set(d)) < 3 or not all(math.isfinite(x) for x in loss):
      entry["error"] = "needs at least three sizes with finite losses"
    else:
      entry.update(fit_lib.fit_with_intervals(
          d, loss, bootstrap=int(study.get("bootstrap", 200)), seed=int(study.get("fit_seed", 0)),
          targets=tuple(study.get("target_losses", ()))))
      entry["note"] = fit_note(entry, d, loss)
    out.append(entry)
  return out


def _size_order(rows, family, label):
  """Ladder entries by parameters (N-grams: by order), then label."""
  sel = [r for r in rows if r["family"] == family and r["size_name"] == label]
  return (sel[0]["params"] or 0, sel[0]["order"] or 0, label) if sel else (0, 0, label)


def fit_note(f: dict, d, loss) -> str:
  """Says when a fit's parameters are not resolved by the points (an honest reading of E)."""
  fitted = fit_lib.law([min(d), max(d)], f["E"], f["B"], f["beta"], f["D0"])
  if fitted[0] - fitted[1] < 0.005 * f["E"]:
    return "flat over these sizes (< 0.5%): E is the level, beta unresolved"
  if f["E"] < 0.01 * min(loss):
    return "E not resolved: a pure power law fits (no floor in reach)"
  return ""


def _g(x, digits: int = 4) -> str:
  if x is None:
    return "-"
  if isinstance(x, float) and math.isinf(x):
    return "never" if x > 0 else "-inf"
  if isinstance(x, float):
    return f"{x:.{digits}f}"
  return str(x)


def _nt(x) -> str:
  if x is None or (isinstance(x, float) and not math.isfinite(x)):
    return "never" if x is not None else "-"
  return f"{x:.3g}"


def _name(f: dict) -> str:
  return f"{f['family']} {f['size_name']}" if f.get("size_name") else f["family"]


def markdown(study, rows: list[dict], fit_list: list[dict]) -> str:
  """study.md: the points, the fits and the data each family needs to reach each target loss."""
  lines = [f"# Study {study.name}", "",
           "Test loss in bits per nucleotide (k-mer models: total log-loss over all tokens / "
           "nucleotides); D = training nucleotides of the nested subset.", "",
           "## Points", "",
           "| point | D | genes | params | steps | val bits/nt | test bits/nt | wall s |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['point']} | {r['train_nucleotides']:,} | {r['train_genes']:,} | "
                 f"{r['params']:,} | {_g(r['steps'])} | {_g(r['val_bits_per_nt'])} | "
                 f"{_g(r['test_bits_per_nt'])} | {r['wall_s']:.1f} |")
  if study.get("budgets", ()):  # IsoFLOP: one D per point, no learning curve (scaling_report)
    return "\n".join(lines) + "\n"
  lines += ["", "## Fits: L(D) = E + B (D/D0)^-beta (95% bootstrap intervals)", "",
            "| family | k | E | E 95% CI | beta | beta 95% CI | B at D0 | D0 | oracle | E vs oracle | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
  for f in fit_list:
    if "error" in f:
      lines.append(f"| {_name(f)} | {f['kmer']} | {f['error']} | | | | | | | | |")
      continue
    oracle = f["oracle_test_bits_per_nt"]
    vs = f"{100 * (f['E'] / oracle - 1):+.2f}%" if oracle else "-"
    lines.append(f"| {_name(f)} | {f['kmer']} | {f['E']:.4f} | [{f['ci']['E'][0]:.4f}, "
                 f"{f['ci']['E'][1]:.4f}] | {f['beta']:.3f} | [{f['ci']['beta'][0]:.3f}, "
                 f"{f['ci']['beta'][1]:.3f}] | {f['B']:.4f} | {f['D0']:.3g} | {_g(oracle)} | {vs} | {f.get('note', '')} |")
  targets = tuple(study.get("target_losses", ()))
  if targets:
    lines += ["", "## Training nucleotides needed to reach a test loss (fit; 95% bootstrap interval)", "",
              "| family | k | " + " | ".join(f"{t:g} bits/nt" for t in targets) + " |",
              "|---|---|" + "---|" * len(targets)]
    for f in fit_list:
      if "error" in f:
        continue
      cells = [f"{_nt(x['D'])} [{_nt(x['ci'][0])}, {_nt(x['ci'][1])}]" for x in f["data_needed"]]
      lines.append(f"| {_name(f)} | {f['kmer']} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot(study, rows: list[dict], fit_list: list[dict], path: str) -> None:
  """study.png: test bits/nt against D (log-log), one panel per tokenization, one colour per family."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  kmers = sorted({r["kmer"] for r in rows})
  fig, axes = plt.subplots(1, len(kmers), figsize=(4.2 * len(kmers), 3.6), squeeze=False, sharey=True)
  colours = {f: plt.cm.tab10(i % 10) for i, f in enumerate(study.families)}
  for ax, k in zip(axes[0], kmers):
    for family in study.families:
      sel = [r for r in rows if r["family"] == family and r["kmer"] == k]
      if not sel:
        continue
      ds = sorted({r["train_nucleotides"] for r in sel})
      by_d = [[r["test_bits_per_nt"] for r in sel if r["train_nucleotides"] == d] for d in ds]
      mean = np.array([np.mean(v) for v in by_d])
      err = np.array([[m - min(v) for m, v in zip(mean, by_d)], [max(v) - m for m, v in zip(mean, by_d)]])
      ax.errorbar(ds, mean, yerr=err, fmt="o", ms=4, color=colours[family], label=family, capsize=2)
      f = next((x for x in fit_list if x["family"] == family and x["kmer"] == k and "E" in x
                and not x.get("size_name")), None)
      if f:
        grid = np.geomspace(min(ds), max(ds), 100)
        ax.plot(grid, fit_lib.law(grid, f["E"], f["B"], f["beta"], f["D0"]), "-", color=colours[family],
                lw=1, alpha=0.8)
        if not f.get("note"):  # a resolved floor only
          ax.axhline(f["E"], color=colours[family], ls=":", lw=0.8)
    oracle = next((r["oracle_test_bits_per_nt"] for r in rows if r["oracle_test_bits_per_nt"]), None)
    if oracle:
      ax.axhline(oracle, color="k", ls="--", lw=0.8, label="oracle")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.2f"))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2f"))
    ax.set_title("nucleotides" if k == 1 else f"{k}-mers")
    ax.set_xlabel("training nucleotides D")
    ax.grid(True, which="both", alpha=0.3)
  losses = [r["test_bits_per_nt"] for r in rows] + [r["oracle_test_bits_per_nt"] for r in rows
                                                    if r["oracle_test_bits_per_nt"]]
  axes[0][0].set_ylim(0.985 * min(losses), 1.015 * max(losses))  # the points, not a far-off fitted E
  axes[0][0].set_ylabel("test bits / nucleotide")
  handles = {}
  for ax in axes[0]:
    for h, label in zip(*ax.get_legend_handles_labels()):
      handles.setdefault(label, h)
  axes[0][0].legend(handles.values(), handles.keys(), fontsize=7)
  sep = "; " if len(kmers) > 1 else "\n"  # one panel is too narrow for the title on one line
  fig.suptitle(f"study {study.name}: test loss against training nucleotides{sep}lines: fits "
               "E + B D^-beta (dotted: E where resolved)", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def _atomic_write(path: str, text: str) -> None:
  with open(path + ".tmp", "w") as f:
    f.write(text)
  os.replace(path + ".tmp", path)


def write_all(study, workdir: str, points: list, missing=()) -> dict:
  """Writes study.csv, study.json, fits.json, study.png and study.md over `points`; prints study.md.

  `missing`: names of points not finished yet (the tables say they are partial).
  """
  rows = [point_row(p, workdir) for p in points]
  with open(os.path.join(workdir, "study.csv.tmp"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  os.replace(os.path.join(workdir, "study.csv.tmp"), os.path.join(workdir, "study.csv"))
  _atomic_write(os.path.join(workdir, "study.json"), json.dumps(rows, indent=1))
  fit_list = fits(study, rows)
  _atomic_write(os.path.join(workdir, "fits.json"), json.dumps(fit_list, indent=1))
  if not study.get("budgets", ()):
    plot(study, rows, fit_list, os.path.join(workdir, "study.png"))
  text = markdown(study, rows, fit_list)
  scaling = None
  if scaling_report.is_scaling(study):  # ladders / IsoFLOP budgets: L(N, D), minima, frontier
    scaling = scaling_report.scaling_fits(study, rows)
    _atomic_write(os.path.join(workdir, "scaling_fits.json"), json.dumps(scaling, indent=1))
    scaling_report.plot(study, rows, scaling, os.path.join(workdir, "scaling.png"))
    text += scaling_report.markdown(study, rows, scaling)
  if missing:
    text = (f"**Partial: {len(missing)} of {len(missing) + len(rows)} points not finished** "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}).\n\n" + text)
  _atomic_write(os.path.join(workdir, "study.md"), text)
  print(text + f"-> {os.path.join(workdir, 'study.md')}, study.csv, study.json, fits.json, study.png",
        flush=True)
  return {"rows": rows, "fits": fit_list, "markdown": text, "scaling": scaling}
