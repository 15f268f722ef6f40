"""--mode=variants: score a VCF or TSV of variants against a reference with trained models.

  python -m dnagen_jax.main --mode=variants --workdir=W --variants=x.vcf.gz \\
    --reference=ref.fa.gz --window=1024 --strands=both --out=W/variants

Order: read every variant, open the reference, build every window, load every
model and check the window fits it, read the labels; only then score, then
write. So bad input ends in one line before any work, and nothing is written
half (docs/variants.md).
"""

from __future__ import annotations

import os
import resource
from typing import Callable

import numpy as np

from dnagen_jax.errors import UserError
from dnagen_jax.variants import inputs
from dnagen_jax.variants import labels as labels_lib
from dnagen_jax.variants import metrics
from dnagen_jax.variants import report
from dnagen_jax.variants import score as score_lib
from dnagen_jax.variants import windows as windows_lib
from dnagen_jax.variants.reference import Reference

RESAMPLES = 1000  # bootstrap resamples of the variants for the 95% intervals


def build_windows(table: inputs.VariantTable, reference: Reference, width: int,
                  skip_mismatches: bool) -> tuple[list[windows_lib.Window], list[int], list[str]]:
  """(windows, rows kept, reasons skipped); BadVariant is fatal unless skip_mismatches."""
  wins, keep, skipped = [], [], []
  for i, v in enumerate(table.variants):
    try:
      wins.append(windows_lib.make_window(v, reference, width))
      keep.append(i)
    except windows_lib.BadVariant as e:
      if not skip_mismatches:
        raise UserError(f"{e}; --skip_mismatches skips and counts such variants") from None
      skipped.append(str(e))
  if not wins:
    raise UserError(f"{table.path}: none of its {len(table.variants)} variants can be scored "
                    f"(first: {skipped[0]})")
  return wins, keep, skipped


def evaluate(score: np.ndarray, lab: labels_lib.Labels, rows: np.ndarray | None = None,
             resamples: int = RESAMPLES) -> dict:
  """Metrics of `score` [n] over `rows` (default all): labeled and numeric cases each."""
  rows = np.arange(score.size) if rows is None else rows
  out = {"n": int(rows.size)}
  if lab.label is not None:
    r = rows[np.isfinite(lab.label[rows])]
    s = metrics.summarize(score[r], labels=lab.label[r], resamples=resamples)
    out.update(labeled=s["n"], damaging=s["damaging"], benign=s["benign"],
               auroc=s["auroc"], auprc=s["auprc"])
  if lab.numeric is not None:
    r = rows[np.isfinite(lab.numeric[rows])]
    s = metrics.summarize(score[r], numeric=lab.numeric[r], resamples=resamples)
    out.update(with_score=s["n"], spearman=s["spearman"])
  return out


def _model_labels(workdirs: list[str]) -> list[str]:
  names = [os.path.basename(os.path.normpath(w)) or "model" for w in workdirs]
  return [n if names.count(n) == 1 else f"{n}{i}" for i, n in enumerate(names)]


def run(workdirs: list[str], variants: str, reference: str, out: str, load_scorer: Callable,
        window: int = 1024, strands: str = "both", skip_mismatches: bool = False,
        label_column: str | None = None, score_column: str | None = None,
        group_column: str | None = None, damaging=labels_lib.DAMAGING, benign=labels_lib.BENIGN,
        chunk: int = 2048, resamples: int = RESAMPLES) -> dict:
  """Scores `variants` with each workdir's model; writes into `out` (see the module docstring).

  `load_scorer` is `workdir.load_scorer` (passed in: this room imports no room above it).
  Returns the result written to variants.json (also without labels).
  """
  if window < 1:
    raise UserError(f"--window={window} must be >= 1")
  if strands not in score_lib.STRANDS:
    raise UserError(f"--strands={strands!r} is not one of {', '.join(score_lib.STRANDS)}")
  if not variants:
    raise UserError("--mode=variants needs --variants=PATH (VCF, TSV or CSV)")
  if not reference or not os.path.isfile(reference):
    raise UserError(f"--mode=variants needs --reference=PATH to a FASTA file "
                    f"(plain, gzip or bgzip){'' if not reference else f'; {reference}: no such file'}")
  table = inputs.read_variants(variants)
  out = os.path.abspath(out)
  ref = Reference(reference, os.path.join(os.path.dirname(out), "reference_cache"))
  wins, keep, skipped = build_windows(table, ref, window, skip_mismatches)
  if skipped:
    print(f"variants: skipped {len(skipped)} of {len(table.variants)} (first: {skipped[0]})")
  table = table.subset(keep)
  lab = labels_lib.read_labels(table, label_column, score_column, group_column, damaging, benign)
  scorers = []
  for w in workdirs:
    scorer = load_scorer(w)
    score_lib.check_window(scorer, window, w)
    scorers.append(scorer)

  names = _model_labels(workdirs) if len(workdirs) > 1 else [""]
  scores, result_models = {}, {}
  for w, name, scorer in zip(workdirs, names, scorers):
    s = score_lib.score_windows(scorer, wins, strands, chunk=chunk,
                                label=f" [{name}]" if name else "")
    sec, cpu = float(s["seconds"]), float(s["cpu_seconds"])
    scores[name] = s
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"variants{f' [{name}]' if name else ''}: {len(wins):,} variants, {int(s['windows']):,} "
          f"windows of {window} nt in {sec:.1f} s: {len(wins) / max(sec, 1e-9):,.1f} variants/s "
          f"({cpu:.1f} CPU s; peak memory of this process {peak:.2f} GiB)", flush=True)
    result_models[name or os.path.basename(os.path.normpath(w))] = {
        "workdir": os.path.abspath(w), "model": getattr(scorer, "name", "model"),
        "seconds": sec, "cpu_seconds": cpu, "variants_per_second": len(wins) / max(sec, 1e-9),
        "windows_scored": int(s["windows"]), "peak_memory_gib": peak}

  suffix = lambda name: f"_{name}" if name else ""
  columns = list(table.columns) + ["window"]
  extra = [[f"{w.chrom}:{w.start + 1}-{w.end}"] for w in wins]
  for name, s in scores.items():
    keys = ["score"] + [k for k in ("forward", "reverse") if k in s]
    columns += [f"llr{suffix(name)}" if k == "score" else f"llr_{k}{suffix(name)}" for k in keys]
    for row, i in zip(extra, range(len(wins))):
      row += [f"{s[k][i]:.6f}" for k in keys]
  result = {"variants": os.path.abspath(variants), "reference": os.path.abspath(reference),
            "window": window, "strands": strands, "scored": len(wins), "skipped": len(skipped),
            "label_column": lab.label_column, "score_column": lab.score_column,
            "group_column": lab.group_column, "resamples": resamples, "models": result_models}
  has_metrics = lab.label is not None or lab.numeric is not None
  if has_metrics:
    if lab.label is not None:
      result["unlabeled"] = int(np.isnan(lab.label).sum())
    for (name, s), m in zip(scores.items(), result_models.values()):
      m["overall"] = evaluate(s["score"], lab, resamples=resamples)
      if lab.group is not None:
        groups = np.asarray(lab.group)
        m["groups"] = {g: evaluate(s["score"], lab, np.flatnonzero(groups == g), resamples)
                       for g in sorted(set(lab.group))}

  os.makedirs(out, exist_ok=True)
  report.write_tsv(os.path.join(out, "variants.tsv"), columns,
                   [r + e for r, e in zip(table.rows, extra)])
  written = ["variants.tsv"]
  if has_metrics:
    report.write_json(os.path.join(out, "variants.json"), result)
    report.write_markdown(os.path.join(out, "variants.md"), result)
    written += ["variants.json", "variants.md"]
    if lab.label is not None:
      r = np.flatnonzero(np.isfinite(lab.label))
      curves = {label: (s["score"][r], lab.label[r])
                for label, s in zip(result_models, scores.values())}
      report.write_roc(os.path.join(out, "roc.png"), curves,
                       f"{os.path.basename(variants)}: {r.size} labeled variants, window {window}")
      written.append("roc.png")
    for label, m in result_models.items():
      o = m["overall"]
      parts = [f"{k} {o[k][0]:.3f} [{o[k][1]:.3f}, {o[k][2]:.3f}]"
               for k in ("auroc", "auprc", "spearman") if k in o]
      print(f"variants [{label}]: " + " | ".join(parts))
  print(f"variants: wrote {', '.join(written)} to {out}")
  return result
