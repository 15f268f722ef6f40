"""Which input columns carry labels, measured scores and groups, and how their values read.

Label column (`--label_column`; default the first of LABEL_COLUMNS present):
values in `damaging` are the positive class (1), values in `benign` the
negative (0); compared case-insensitively, so ClinVar's CLNSIG reads as it
is. Any other value (uncertain, conflicting, missing) leaves the variant
unlabeled: it is scored and written, and counted, but not in AUROC/AUPRC.
Score column (`--score_column`; default the first of SCORE_COLUMNS present):
a measured number where lower is more damaging (a function score); values
that are not numbers are left out of Spearman. Group column
(`--group_column`; default the first of GROUP_COLUMNS present): metrics are
also given per value.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dnagen_jax.errors import UserError
from dnagen_jax.variants.inputs import VariantTable

LABEL_COLUMNS = ("label", "class", "CLNSIG", "clinical_significance")
SCORE_COLUMNS = ("function_score", "fitness", "dms_score", "score")
GROUP_COLUMNS = ("consequence", "group", "CSQ_CLASS")
DAMAGING = ("1", "true", "damaging", "deleterious", "pathogenic", "likely_pathogenic",
            "pathogenic/likely_pathogenic", "lof", "loss_of_function")
BENIGN = ("0", "false", "benign", "likely_benign", "benign/likely_benign", "neutral", "tolerated",
          "func", "functional")


@dataclasses.dataclass
class Labels:
  """label [n] 1/0/nan; numeric [n] float (nan = none); group [n] str or None; column names."""
  label: np.ndarray | None
  numeric: np.ndarray | None
  group: list[str] | None
  label_column: str | None
  score_column: str | None
  group_column: str | None


def _pick(table: VariantTable, given: str | None, defaults, flag: str) -> str | None:
  if given:
    if not table.has(given):
      raise UserError(f"--{flag}={given}: {table.path} has no such column "
                      f"(columns: {', '.join(table.columns)})")
    return table.columns[table.index(given)]
  return next((table.columns[table.index(c)] for c in defaults if table.has(c)), None)


def read_labels(table: VariantTable, label_column=None, score_column=None, group_column=None,
                damaging=DAMAGING, benign=BENIGN) -> Labels:
  """The labels, measured scores and groups of `table` (see the module docstring)."""
  lab = _pick(table, label_column, LABEL_COLUMNS, "label_column")
  num = _pick(table, score_column, SCORE_COLUMNS, "score_column")
  grp = _pick(table, group_column, GROUP_COLUMNS, "group_column")
  label = numeric = group = None
  if lab:
    pos, neg = {d.lower() for d in damaging}, {b.lower() for b in benign}
    values = [v.strip().lower() for v in table.column(lab)]
    label = np.array([1.0 if v in pos else 0.0 if v in neg else np.nan for v in values])
    if np.isnan(label).all() and label_column:
      seen = ", ".join(sorted(set(values))[:8])
      raise UserError(f"--label_column={lab}: no value names a damaging or benign variant "
                      f"(values: {seen}); set --damaging_labels and --benign_labels")
    if np.isnan(label).all():
      label = None
  if num:
    def number(v):
      try:
        return float(v)
      except ValueError:
        return np.nan
    numeric = np.array([number(v) for v in table.column(num)])
    if np.isnan(numeric).all():
      if score_column:
        raise UserError(f"--score_column={num}: no value is a number")
      numeric = None
  if grp:
    group = [v.strip() or "." for v in table.column(grp)]
  return Labels(label, numeric, group, lab if label is not None else None,
                num if numeric is not None else None, grp)
