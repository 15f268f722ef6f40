"""What --mode=variants writes: variants.tsv, and with labels variants.md/.json and roc.png.

Every file is written under a temporary name and renamed when complete, after
all the scoring is done, so a failed run leaves nothing half written.
"""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np

from dnagen_jax.variants import metrics


def _replace_into(path: str, write) -> None:
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    write(tmp)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_tsv(path: str, columns: list[str], rows: list[list[str]]) -> None:
  def write(tmp):
    with open(tmp, "w", newline="") as f:
      w = csv.writer(f, delimiter="\t", lineterminator="\n")
      w.writerow(columns)
      w.writerows(rows)
  _replace_into(path, write)


def write_json(path: str, result: dict) -> None:
  def write(tmp):
    with open(tmp, "w") as f:
      json.dump(result, f, indent=2, allow_nan=True)
  _replace_into(path, write)


def _fmt(m) -> str:
  if m is None:
    return ""
  value, low, high = m
  if math.isnan(value):
    return "n/a"
  return f"{value:.3f} [{low:.3f}, {high:.3f}]" if not math.isnan(low) else f"{value:.3f}"


def markdown(result: dict) -> str:
  """The tables of variants.md: per model, overall then per group."""
  spearman = (f"; Spearman is against `{result['score_column']}` (lower = more damaging)"
              if result.get("score_column") else "")
  lines = [f"# Variant effects: {os.path.basename(result['variants'])}", "",
           f"Variants: `{result['variants']}`; reference: `{result['reference']}`; window "
           f"{result['window']} nt; strands: {result['strands']}. Score: ln p(ALT window) - "
           f"ln p(REF window) (nats; lower = less likely). Damaging is the positive class, "
           f"ranked by -score{spearman}. Brackets: 95% bootstrap intervals "
           f"({result['resamples']} resamples of the variants).", ""]
  if result.get("skipped"):
    lines += [f"Skipped (--skip_mismatches): {result['skipped']} variants.", ""]
  lines += ["| model | group | n | damaging | benign | AUROC | AUPRC | Spearman | variants/s |",
            "|---|---|---:|---:|---:|---|---|---|---:|"]
  for label, m in result["models"].items():
    rows = [("all", m["overall"])] + list(m.get("groups", {}).items())
    for i, (group, s) in enumerate(rows):
      speed = f"{m['variants_per_second']:.1f}" if i == 0 else ""
      lines.append(f"| {label if i == 0 else ''} | {group} | {s['n']} | {s.get('damaging', '')} | "
                   f"{s.get('benign', '')} | {_fmt(s.get('auroc'))} | {_fmt(s.get('auprc'))} | "
                   f"{_fmt(s.get('spearman'))} | {speed} |")
  return "\n".join(lines) + "\n"


def write_markdown(path: str, result: dict) -> None:
  def write(tmp):
    with open(tmp, "w") as f:
      f.write(markdown(result))
  _replace_into(path, write)


def write_roc(path: str, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
  """One ROC curve per model (label -> (score [n], damaging [n] in {0, 1}))."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5, 5))
  for label, (score, y) in curves.items():
    fpr, tpr = metrics.roc_curve(-np.asarray(score), y)
    ax.plot(fpr, tpr, label=f"{label} (AUROC {metrics.auroc(-np.asarray(score), y):.3f})")
  ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
  ax.set_xlabel("false positive rate (benign ranked damaging)")
  ax.set_ylabel("true positive rate (damaging found)")
  ax.set_title(title, fontsize=9)
  ax.legend(loc="lower right", fontsize=8)
  fig.tight_layout()
  _replace_into(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
  plt.close(fig)
