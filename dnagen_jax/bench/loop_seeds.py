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
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
from scipy import stats


def read(workdir: str) -> dict:
  """One seed's figures from WORKDIR/loop.json; ValueError (one line) if it holds no comparison."""
  path = os.path.join(workdir, "loop.json")
  try:
    with open(path) as f:
      result = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"{path}: not a finished bench --loop result ({e})") from None
  if not result.get("equal_nucleotides"):
    raise ValueError(f"{path}: holds one library only (run bench --loop with PyTorch installed)")
  last = result["equal_nucleotides"][-1]
  sides = list(result["sides"].values())
  return {"workdir": workdir, "title": result["title"], "seed": result["config"]["train"]["seed"],
          "nucleotides": last["nucleotides"], "validation": [last["perplexity"], last["other_perplexity"]],
          "test": [s.get("test_perplexity") for s in sides]}


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


def summarise(runs: list[dict]) -> dict:
  """Per-seed rows and, for validation and test perplexity, `_compare` over the seeds."""
  titles = {r["title"] for r in runs}
  if len(titles) > 1:
    raise ValueError(f"the workdirs hold different runs: {' | '.join(sorted(titles))}")
  seeds = [r["seed"] for r in runs]
  if len(set(seeds)) < len(seeds):
    raise ValueError(f"two workdirs share a seed ({seeds}): each seed once")
  out = {"title": runs[0]["title"], "seeds": runs,
         "validation": _compare(np.array([r["validation"] for r in runs], np.float64))}
  if all(None not in r["test"] for r in runs):
    out["test"] = _compare(np.array([r["test"] for r in runs], np.float64))
  return out


def report(summary: dict) -> str:
  lines = [summary["title"], f"{'seed':>6s} {'nucleotides':>12s} {'validation: ours / PyTorch':>28s}"
           f" {'test: ours / PyTorch':>24s}"]
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
                   f"(sd {c['sd'][1]:.4f}); ours - PyTorch {c['difference']:+.4f}{ci}")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdirs", nargs="+", help="finished bench --loop workdirs, one per seed")
  parser.add_argument("--out", default="", help="write the summary as JSON here")
  args = parser.parse_args(argv)
  try:
    summary = summarise([read(w) for w in args.workdirs])
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(report(summary))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(summary, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
