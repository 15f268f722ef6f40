"""The study's two tables for any set of trained workdirs (`--mode=report`).

For each workdir: its test perplexity and bits per nucleotide (from
results.json), and its mutation-detection accuracy for MAX in {1, 5, 10} x
seeds {0, 1, 2} under every rule (`mutations.rules`), as mean +- std over the
seeds. Mutation sets are drawn from each workdir's own test split and shared
by all workdirs trained on the same data set, so models are compared on the
same pairs. On synthetic data the true source (the oracle) gets a row too.

Writes to `out_dir`: tables.md, accuracy.png (accuracy against MAX, one line
per model and rule) and report.json (every number). Detection results are
cached in `<workdir>/detect_report/` and reused while the set, the window and
the model (its config.json and results.json) are unchanged.
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from dnagen_jax import config_check
from dnagen_jax.workdir import load_scorer
from dnagen_jax import scoring
from dnagen_jax.errors import UserError
from dnagen_jax.mutations import detect
from dnagen_jax.mutations import generate
from dnagen_jax.mutations import mutation_csv
from dnagen_jax.mutations import rules

MAX_EDITS = (1, 5, 10)
SEEDS = (0, 1, 2)
NUM_PAIRS = 1000


def _data_config(cfg: dict):
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(cfg["data"])


def _read_results(workdir: str) -> dict:
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    print(f"note: {workdir} has no results.json (training unfinished?); its perplexity is left blank")
    return {}
  with open(path) as f:
    return json.load(f)


def ensure_set(data_config, out_dir: str, max_edits: int, seed: int, num_pairs: int) -> str:
  """Path of the (max_edits, seed) set of this data set, generated once."""
  dataset = generate.dataset_name(data_config)
  path = os.path.join(out_dir, "sets", dataset, f"n{num_pairs}",
                      generate.file_name(max_edits, seed))
  want = dict(max_edits=max_edits, num_pairs=num_pairs, seed=seed, split="test",
              swaps=False, dataset=dataset)
  have = mutation_csv.read_settings(path) if os.path.exists(path) else None
  if not have or any(have.get(k) != v for k, v in want.items()):
    generate.generate_set(data_config, path, max_edits, num_pairs, seed)
  return path


class _Entry:
  """One row of the report: a trained workdir, or the oracle of a synthetic data set."""

  def __init__(self, label, workdir, model, data_config, results, scorer_fn):
    self.label, self.workdir, self.model = label, workdir, model
    self.data_config, self.results, self.scorer_fn = data_config, results, scorer_fn
    self.detect = {}  # (max_edits, seed) -> detect result


def _entries(workdirs: list[str], out_dir: str) -> list[_Entry]:
  """Checks every workdir before any scoring starts; adds oracle rows."""
  entries = []
  for wd in workdirs:
    cfg = config_check.read_workdir_config(wd)
    results = _read_results(wd)
    model = results.get("model") or cfg["model"]["name"]
    entries.append(_Entry(model, wd, model, _data_config(cfg), results,
                          lambda wd=wd: load_scorer(wd)))
  labels = [e.label for e in entries]
  for e in entries:  # two runs of one model family: name them by workdir too
    if labels.count(e.label) > 1:
      e.label = f"{e.model} ({os.path.basename(os.path.normpath(e.workdir))})"

  oracles = {}
  for e in entries:
    if e.data_config.source != "synthetic":
      continue
    dataset = generate.dataset_name(e.data_config)
    if dataset not in oracles:
      oracles[dataset] = _oracle_entry(e, dataset, out_dir)
  if len(oracles) > 1:
    for dataset, o in oracles.items():
      o.label = f"oracle ({dataset})"
  return entries + list(oracles.values())


def _oracle_entry(e: _Entry, dataset: str, out_dir: str) -> _Entry:
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  from dnagen_jax.data.gene_dataset import gene_dataset_dataset_builder as gdb  # pylint: disable=g-import-not-at-top
  data_config = e.data_config
  ppl = e.results.get("oracle_test_perplexity") or storage.oracle_perplexity(data_config, "test")
  results = {"model": "oracle", "test_perplexity": ppl,
             "test_bits_per_nucleotide": math.log2(ppl), "oracle_test_perplexity": ppl}
  workdir = os.path.join(out_dir, f"oracle-{dataset}")
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "results.json"), "w") as f:  # also the cache's model stamp
    json.dump(results, f, indent=1)

  def scorer():
    settings = storage.dataset_settings(data_config)
    return scoring.OracleScorer(gdb.markov_source(gdb.make_config(**settings)))

  return _Entry("oracle", workdir, "oracle", data_config, results, scorer)


def _evaluate(entries, out_dir, num_pairs, max_edits, seeds, window):
  """Fills entry.detect for every (MAX, seed), reusing cached results."""
  total, done = len(entries) * len(max_edits) * len(seeds), 0
  for e in entries:
    scorer = None  # loaded only when some set is not cached
    cache_dir = os.path.join(e.workdir, "detect_report")
    for m in max_edits:
      for s in seeds:
        done += 1
        path = ensure_set(e.data_config, out_dir, m, s, num_pairs)
        start = time.perf_counter()
        result = detect.cached(e.workdir, path, window, cache_dir)
        how = "cached"
        if result is None:
          if scorer is None:
            scorer = e.scorer_fn()
          result = detect.detect_file(scorer, e.workdir, path, window, e.model, cache_dir)
          how = f"scored in {time.perf_counter() - start:.1f} s"
        e.detect[(m, s)] = result
        accs = "  ".join(f"{r} {result['rules'][r]['accuracy']:.3f}" for r in rules.RULES)
        print(f"[report {done}/{total}] {e.label}: MAX={m} seed={s}: {accs} ({how})", flush=True)


def _summaries(e: _Entry, max_edits, seeds) -> dict:
  """{rule: {MAX: {'mean', 'std', 'values'}}}; std over seeds with ddof=1."""
  out = {}
  for r in rules.RULES + rules.ABLATIONS:
    group = "rules" if r in rules.RULES else "ablations"
    out[r] = {}
    for m in max_edits:
      vals = [e.detect[(m, s)][group][r]["accuracy"] for s in seeds]
      out[r][str(m)] = {"mean": float(np.mean(vals)),
                        "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                        "values": vals}
  return out


def _by_kind(e: _Entry, seeds) -> dict:
  """Single-edit accuracy per edit kind and rule, pooled over seeds of MAX=1."""
  pooled = {}
  for s in seeds:
    for kind, row in e.detect.get((1, s), {}).get("single_edit_by_kind", {}).items():
      acc = pooled.setdefault(kind, {"n": 0, **{r: 0.0 for r in rules.RULES}})
      acc["n"] += row["n"]
      for r in rules.RULES:
        acc[r] += row[r] * row["n"]
  for row in pooled.values():
    for r in rules.RULES:
      row[r] /= max(row["n"], 1)
  return pooled


def _fmt(x, spec=".3f"):
  return "–" if x is None else format(x, spec)


def tables_md(report: dict) -> str:
  """The study's two tables (and the single-edit breakdown) as Markdown."""
  s = report["settings"]
  out = ["# Report", "",
         f"Mutation sets: {s['num_pairs']} pairs each from each data set's test split, "
         f"MAX in {s['max_edits']}, seeds {s['seeds']}; window rule W={s['window']}. "
         f"Accuracy is the mean ± std (ddof=1) over seeds; ties count as wrong.", "",
         "## Test perplexity", "",
         "| model | workdir | data set | params | nucleotides seen | val perplexity | test perplexity | test bits/nt | oracle test perplexity |",
         "|---|---|---|---|---|---|---|---|---|"]
  for m in report["models"]:
    r = m["results"]
    params = r.get("params")
    seen = r.get("nucleotides_seen")
    out.append(
        f"| {m['label']} | {m['workdir']} | {m['dataset']} | {_fmt(params, ',') if params is not None else '–'} "
        f"| {_fmt(seen, ',') if seen is not None else '–'} | {_fmt(r.get('val_perplexity'))} "
        f"| {_fmt(r.get('test_perplexity'))} | {_fmt(r.get('test_bits_per_nucleotide'))} "
        f"| {_fmt(r.get('oracle_test_perplexity'))} |")
  maxes = [str(x) for x in s["max_edits"]]
  out += ["", "## Mutation detection accuracy", "",
          "| rule | model | " + " | ".join(f"MAX={x}" for x in maxes) + " |",
          "|---|---|" + "---|" * len(maxes)]
  for rule in rules.RULES:
    for m in report["models"]:
      cells = [f"{m['accuracy'][rule][x]['mean']:.3f} ± {m['accuracy'][rule][x]['std']:.3f}" for x in maxes]
      out.append(f"| {rule} | {m['label']} | " + " | ".join(cells) + " |")
  out += ["", "## Single-edit pairs by kind (MAX=1, pooled over seeds)", "",
          "| model | kind | n | " + " | ".join(rules.RULES) + " |",
          "|---|---|---|" + "---|" * len(rules.RULES)]
  for m in report["models"]:
    for kind, row in m["single_edit_by_kind"].items():
      out.append(f"| {m['label']} | {kind} | {row['n']} | "
                 + " | ".join(f"{row[r]:.3f}" for r in rules.RULES) + " |")
  return "\n".join(out) + "\n"


def plot(report: dict, path: str) -> None:
  """accuracy.png: accuracy against MAX, one panel per rule, one line per model."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  maxes = report["settings"]["max_edits"]
  fig, axes = plt.subplots(1, len(rules.RULES), figsize=(4.2 * len(rules.RULES), 3.6),
                           sharey=True, squeeze=False)
  for ax, rule in zip(axes[0], rules.RULES):
    for m in report["models"]:
      acc = m["accuracy"][rule]
      ax.errorbar(maxes, [acc[str(x)]["mean"] for x in maxes],
                  yerr=[acc[str(x)]["std"] for x in maxes], marker="o", capsize=3,
                  label=m["label"], linestyle="--" if m["model"] == "oracle" else "-")
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title(f"{rule} rule" + (f" (W={report['settings']['window']})" if rule == "window" else ""))
    ax.set_xlabel("MAX (mutations per pair ~ U{1..MAX})")
    ax.set_xticks(maxes)
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("accuracy (real gene preferred)")
  handles, labels = axes[0][0].get_legend_handles_labels()
  rows = -(-len(labels) // 4)  # legend below the panels, 4 models per row
  fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9)
  fig.tight_layout(rect=(0, 0.06 * rows + 0.02, 1, 1))
  fig.savefig(path, dpi=120)
  plt.close(fig)


def run(workdirs: list[str], out_dir: str, num_pairs: int = NUM_PAIRS,
        max_edits=MAX_EDITS, seeds=SEEDS, window: int = rules.DEFAULT_WINDOW) -> dict:
  """`--mode=report`: tables.md, accuracy.png and report.json in `out_dir`."""
  if not workdirs:
    raise UserError("--mode=report needs --workdirs=DIR[,DIR...] (trained workdirs to compare)")
  generate.check_settings(min(max_edits), num_pairs, "test")
  os.makedirs(out_dir, exist_ok=True)
  entries = _entries(list(workdirs), out_dir)
  _evaluate(entries, out_dir, num_pairs, tuple(max_edits), tuple(seeds), window)
  report = {
      "settings": {"num_pairs": num_pairs, "max_edits": list(max_edits), "seeds": list(seeds),
                   "window": window, "split": "test"},
      "models": [{
          "label": e.label, "model": e.model, "workdir": e.workdir,
          "dataset": generate.dataset_name(e.data_config), "results": e.results,
          "accuracy": _summaries(e, max_edits, seeds),
          "single_edit_by_kind": _by_kind(e, seeds),
          "sets": {f"max{m}_seed{s}": r for (m, s), r in e.detect.items()},
      } for e in entries],
  }
  with open(os.path.join(out_dir, "tables.md"), "w") as f:
    f.write(tables_md(report))
  plot(report, os.path.join(out_dir, "accuracy.png"))
  with open(os.path.join(out_dir, "report.json"), "w") as f:
    json.dump(report, f, indent=1)
  print(tables_md(report))
  print(f"wrote {os.path.join(out_dir, 'tables.md')}, accuracy.png and report.json")
  return report
