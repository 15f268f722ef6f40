r"""Several seeds of `bench --loop` summarised: is one library ahead per nucleotide, beyond seed noise?

  python -m dnagen_jax.bench.loop_seeds /tmp/loop_s0 /tmp/loop_s1 /tmp/loop_s2

Each argument is a finished `bench --loop` workdir (its loop.json) of the same
model and data with another `--config.train.seed`. Per seed: the last
validation point at equal nucleotides (the project's, and PyTorch's curve read
at the same count) and the final models' held-out (test split) perplexity.
Over seeds: each library's mean and standard deviation, and the paired
difference (project - PyTorch, same seed) with a 95% Student-t interval. An
interval that lies above zero says the project learns less per nucleotide;
one that holds zero says the seeds cannot tell the loops apart at this size.
Writes the summary as JSON to --out (optional).

One factor of the project's own loop, over the same seeds (runs with or
without `--notorch`): `--against` pairs the project's side of the first
workdirs with the project's side of these, seed by seed, at each run's last
validation point, and names the config fields in which the two sets differ:

  python -m dnagen_jax.bench.loop_seeds /tmp/tfpt_s0 /tmp/tfpt_s1 --against /tmp/tf_s0 /tmp/tf_s1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
from scipy import stats


def _load(workdir: str) -> dict:
  """WORKDIR/loop.json; ValueError (one line) if there is none or it is unreadable."""
  path = os.path.join(workdir, "loop.json")
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"{path}: not a finished bench --loop result ({e})") from None


def read(workdir: str) -> dict:
  """One seed's figures from WORKDIR/loop.json; ValueError (one line) if it holds no comparison."""
  result = _load(workdir)
  if not result.get("equal_nucleotides"):
    raise ValueError(f"{os.path.join(workdir, 'loop.json')}: holds one library only "
                     "(run bench --loop with PyTorch installed, or compare variants with --against)")
  last = result["equal_nucleotides"][-1]
  sides = list(result["sides"].values())
  return {"workdir": workdir, "title": result["title"], "seed": result["config"]["train"]["seed"],
          "nucleotides": last["nucleotides"], "validation": [last["perplexity"], last["other_perplexity"]],
          "test": [s.get("test_perplexity") for s in sides]}


def _flat(config: dict, prefix: str = "") -> dict:
  """{'model.embed_dim': 256, ...} from a nested config dict."""
  out = {}
  for key, value in config.items():
    if isinstance(value, dict):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def read_variants(workdirs: list[str], against: list[str]) -> tuple[list[dict], list[str]]:
  """The project's side of two sets of runs, paired by seed.

  Returns (runs, differences): runs as `read` gives them, with [first set, second set] in
  place of [ours, PyTorch] (last validation point of each, and held-out perplexity);
  differences: 'field: a vs b' for each config field (train.seed aside) the two sets differ in.
  ValueError (one line) when the seeds do not pair up or the runs saw different nucleotides.
  """
  def side(workdir):
    result = _load(workdir)
    try:
      ours = result["sides"]["dnagen_jax"]
      return {"title": result["title"], "seed": result["config"]["train"]["seed"],
              "config": _flat(result["config"]), "nucleotides": ours["points"][-1]["nucleotides_seen"],
              "perplexity": ours["points"][-1]["perplexity"], "test": ours.get("test_perplexity")}
    except (KeyError, IndexError, TypeError) as e:
      raise ValueError(f"{os.path.join(workdir, 'loop.json')}: no validation point of the project's "
                       f"side (missing {e})") from None

  first, second = [side(w) for w in workdirs], [side(w) for w in against]
  for group in (first, second):
    seeds = [r["seed"] for r in group]
    if len(set(seeds)) < len(seeds):
      raise ValueError(f"two workdirs of one set share a seed ({seeds}): each seed once")
  by_seed = {r["seed"]: r for r in second}
  if sorted(by_seed) != sorted(r["seed"] for r in first):
    raise ValueError(f"the two sets hold different seeds ({sorted(r['seed'] for r in first)} "
                     f"against {sorted(by_seed)}): pair each seed")
  runs = []
  for workdir, a in zip(workdirs, first):
    b = by_seed[a["seed"]]
    if a["nucleotides"] != b["nucleotides"]:
      raise ValueError(f"seed {a['seed']}: the runs' last validation saw {a['nucleotides']} and "
                       f"{b['nucleotides']} nucleotides: compare runs of the same data and budget")
    runs.append({"workdir": workdir, "title": a["title"], "seed": a["seed"], "nucleotides": a["nucleotides"],
                 "validation": [a["perplexity"], b["perplexity"]], "test": [a["test"], b["test"]]})
  fields = sorted(set(first[0]["config"]) | set(second[0]["config"]))
  differences = [f"{k}: {first[0]['config'].get(k)} vs {second[0]['config'].get(k)}" for k in fields
                 if k != "train.seed" and first[0]["config"].get(k) != second[0]["config"].get(k)]
  return runs, differences


def _compare(pairs: np.ndarray) -> dict:
  """pairs [seeds, 2] (project, PyTorch) -> means, sds, and the paired difference's mean and 95% interval."""
  diff = pairs[:, 0] - pairs[:, 1]
  n = len(diff)
  out = {"mean": pairs.mean(0).tolist(), "sd": (pairs.std(0, ddof=1) if n > 1 else np.zeros(2)).tolist(),
         "difference": float(diff.mean()), "interval": None}
  if n > 1:
    half = stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n)
    out["interval"] = [float(diff.mean() - half), float(diff.mean() + half)]
  return out


def summarise(runs: list[dict], labels: tuple[str, str] = ("ours", "PyTorch")) -> dict:
  """Per-seed rows and, for validation and test perplexity, `_compare` over the seeds.

  labels name the two columns of each run's [validation] and [test] pairs.
  """
  titles = {r["title"] for r in runs}
  if len(titles) > 1:
    raise ValueError(f"the workdirs hold different runs: {' | '.join(sorted(titles))}")
  seeds = [r["seed"] for r in runs]
  if len(set(seeds)) < len(seeds):
    raise ValueError(f"two workdirs share a seed ({seeds}): each seed once")
  out = {"title": runs[0]["title"], "labels": list(labels), "seeds": runs,
         "validation": _compare(np.array([r["validation"] for r in runs], np.float64))}
  if all(None not in r["test"] for r in runs):
    out["test"] = _compare(np.array([r["test"] for r in runs], np.float64))
  return out


def report(summary: dict) -> str:
  a, b = summary.get("labels", ("ours", "PyTorch"))
  lines = [summary["title"], f"{'seed':>6s} {'nucleotides':>12s} {'validation: ' + a + ' / ' + b:>28s}"
           f" {'test: ' + a + ' / ' + b:>24s}"]
  for r in summary["seeds"]:
    test = " / ".join(f"{v:.4f}" for v in r["test"]) if None not in r["test"] else "-"
    lines.append(f"{r['seed']:>6d} {r['nucleotides'] / 1e6:>11.3f}M {r['validation'][0]:>17.4f} / "
                 f"{r['validation'][1]:.4f} {test:>24s}")
  for key in ("validation", "test"):
    if key in summary:
      c = summary[key]
      ci = (f", 95% interval [{c['interval'][0]:+.4f}, {c['interval'][1]:+.4f}]" if c["interval"]
            else " (one seed: no interval)")
      lines.append(f"{key}: mean {c['mean'][0]:.4f} (sd {c['sd'][0]:.4f}) / {c['mean'][1]:.4f} "
                   f"(sd {c['sd'][1]:.4f}); {a} - {b} {c['difference']:+.4f}{ci}")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdirs", nargs="+", help="finished bench --loop workdirs, one per seed")
  parser.add_argument("--against", nargs="+", default=[],
                      help="workdirs of a variant of the project's loop, one per seed: compare the project's "
                           "side of WORKDIRS with theirs instead of with PyTorch")
  parser.add_argument("--out", default="", help="write the summary as JSON here")
  args = parser.parse_args(argv)
  try:
    if args.against:
      runs, differences = read_variants(args.workdirs, args.against)
      summary = summarise(runs, labels=("first", "second"))
      summary["differences"] = differences
    else:
      summary = summarise([read(w) for w in args.workdirs])
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if summary.get("differences") is not None:
    print("first vs second: " + ("; ".join(summary["differences"]) or "no config field differs"))
  print(report(summary))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(summary, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
