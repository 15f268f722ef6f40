"""Scores a mutation set with a trained model (`--mode=detect`).

Every distinct sequence of the set (real and mutated genes) goes to the
scorer in one `token_log_probs` call, which batches and buckets by length
itself; the rules of `rules.py` then decide each pair from the per-nucleotide
log-probs. The result goes to `workdir/detect_<set name>.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Sequence

import numpy as np

from dnagen_jax import config_check
from dnagen_jax.workdir import load_scorer
from dnagen_jax import scoring
from dnagen_jax.mutations import edits as edits_lib
from dnagen_jax.mutations import mutation_csv
from dnagen_jax.mutations import rules
from dnagen_jax.mutations.mutation_csv import MutationPair

SENSITIVITY_WINDOWS = (0, 2, 5, 10, 20, 50, 100)  # reported, never used to pick W


def log_probs(scorer: scoring.Scorer, pairs: Sequence[MutationPair]):
  """(real, mutated): two lists of n per-nucleotide ln p arrays, [Lr_i] and [Lm_i].

  Genes drawn twice (the draw is with replacement) are scored once.
  """
  seqs = [p.real for p in pairs] + [p.mutated for p in pairs]
  unique = list(dict.fromkeys(seqs))
  lps = scorer.token_log_probs(unique)
  by_seq = {s: np.asarray(lp, np.float64) for s, lp in zip(unique, lps)}
  n = len(pairs)
  return [by_seq[s] for s in seqs[:n]], [by_seq[s] for s in seqs[n:]]


def alignments(pairs: Sequence[MutationPair]) -> tuple[list[np.ndarray], str]:
  """Origins [Lm_i] of every pair: from recorded edits, else by diffing."""
  origins = [edits_lib.apply_edits(p.real, p.edits)[1] if p.edits is not None
             else edits_lib.origin_from_diff(p.real, p.mutated) for p in pairs]
  known = sum(p.edits is not None for p in pairs)
  source = "edits" if known == len(pairs) else "diff" if known == 0 else "edits+diff"
  return origins, source


def _summary(correct: np.ndarray, tie: np.ndarray) -> dict:
  return {"accuracy": float(correct.mean()) if correct.size else float("nan"),
          "correct": int(correct.sum()), "ties": int(tie.sum())}


def detect(scorer: scoring.Scorer, pairs: Sequence[MutationPair],
           window: int = rules.DEFAULT_WINDOW) -> dict:
  """Accuracy of every rule on `pairs`, with ties, ablations and breakdowns."""
  lp_real, lp_mut = log_probs(scorer, pairs)
  distinct = len({p.real for p in pairs} | {p.mutated for p in pairs})
  origins, source = alignments(pairs)
  identical = np.array([p.real == p.mutated for p in pairs])
  whole_real, whole_mut = rules.whole_scores(lp_real), rules.whole_scores(lp_mut)
  decisions = {r: rules.judge(whole_real[r], whole_mut[r], identical)
               for r in ("perplexity", "probability", "logodds")}
  decisions["window"] = rules.judge(*rules.window_scores(lp_real, lp_mut, origins, window), identical)
  decisions["window_raw"] = rules.judge(
      *rules.window_scores(lp_real, lp_mut, origins, window, background=0.0), identical)
  sensitivity = {}
  for w in SENSITIVITY_WINDOWS:
    correct, _ = rules.judge(*rules.window_scores(lp_real, lp_mut, origins, w), identical)
    sensitivity[str(w)] = float(correct.mean())

  by_kind = {}  # pairs with exactly one edit, per kind: where each rule fails
  single = [i for i, p in enumerate(pairs) if p.edits is not None and len(p.edits) == 1]
  for kind in edits_lib.KINDS_WITH_SWAP:
    idx = np.array([i for i in single if pairs[i].edits[0][0] == kind], np.int64)
    if idx.size:
      by_kind[kind] = {"n": int(idx.size), **{
          r: float(decisions[r][0][idx].mean()) for r in rules.RULES + rules.ABLATIONS}}

  return {
      "n": len(pairs), "window": window, "alignment": source, "distinct_sequences": distinct,
      "identical_pairs": int(identical.sum()),
      "rules": {r: _summary(*decisions[r]) for r in rules.RULES},
      "ablations": {r: _summary(*decisions[r]) for r in rules.ABLATIONS},
      "window_sensitivity": sensitivity,
      "single_edit_by_kind": by_kind,
  }


def model_stamp(workdir: str) -> str:
  """Identifies the trained model of `workdir` (its results.json), for caches."""
  h = hashlib.sha256()
  for name in ("config.json", "results.json"):
    path = os.path.join(workdir, name)
    if os.path.exists(path):
      with open(path, "rb") as f:
        h.update(f.read())
  return h.hexdigest()


def result_path(result_dir: str, csv_path: str) -> str:
  return os.path.join(result_dir, f"detect_{mutation_csv.set_name(csv_path)}.json")


def format_table(result: dict) -> str:
  w = result["window"]
  lines = [f"{result.get('set', 'set')}: {result['n']} pairs, model {result.get('model', '?')}"
           f" (alignment from {result['alignment']})",
           f"  {'rule':<30}{'accuracy':>9}{'ties':>7}"]
  for group in ("rules", "ablations"):
    for r, s in result[group].items():
      label = f"{r} (W={w})" if r.startswith("window") else r
      if group == "ablations":
        label = f"[ablation] {label}"
      lines.append(f"  {label:<30}{s['accuracy']:>9.3f}{s['ties']:>7d}")
  return "\n".join(lines)


def cached(workdir: str, csv_path: str, window: int,
           result_dir: str | None = None) -> dict | None:
  """A previous result for this exact set, model and window, or None."""
  path = result_path(result_dir or workdir, csv_path)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      result = json.load(f)
  except (OSError, ValueError):
    return None
  if (result.get("csv_sha256") == mutation_csv.file_digest(csv_path)
      and result.get("window") == window and result.get("model_stamp") == model_stamp(workdir)
      and "single_edit_by_kind" in result):
    return result
  return None


def detect_file(scorer: scoring.Scorer, workdir: str, csv_path: str,
                window: int = rules.DEFAULT_WINDOW, model: str = "?",
                result_dir: str | None = None, pairs: list[MutationPair] | None = None) -> dict:
  """Scores the set at `csv_path`, writes <result_dir or workdir>/detect_<set>.json."""
  pairs = pairs if pairs is not None else mutation_csv.read(csv_path)
  start = time.perf_counter()
  result = detect(scorer, pairs, window)
  result.update(set=mutation_csv.set_name(csv_path), csv=os.path.abspath(csv_path),
                csv_sha256=mutation_csv.file_digest(csv_path), model=model,
                model_stamp=model_stamp(workdir),
                seconds=round(time.perf_counter() - start, 3))
  result_dir = result_dir or workdir
  os.makedirs(result_dir, exist_ok=True)
  with open(result_path(result_dir, csv_path), "w") as f:
    json.dump(result, f, indent=1)
  return result


def run(workdir: str, mutations_csv_path: str, window: int = rules.DEFAULT_WINDOW) -> dict:
  """`--mode=detect`: the trained model of `workdir` on one mutation set."""
  pairs = mutation_csv.read(mutations_csv_path)  # bad input fails before a model loads
  model = config_check.read_workdir_config(workdir)["model"]["name"]
  scorer = load_scorer(workdir)
  result = detect_file(scorer, workdir, mutations_csv_path, window, model, pairs=pairs)
  print(format_table(result))
  print(f"scored {result['distinct_sequences']} distinct sequences of {2 * result['n']} "
        f"in {result['seconds']:.2f} s (one batched call); "
        f"wrote {result_path(workdir, mutations_csv_path)}")
  return result
